// Package cli is ecrpush's command line: one file per subcommand, each wiring flags (and their
// ECRPUSH_* environment variables) to options of the package that does the work. It owns exit codes
// and the one-line error a user sees; it never talks to AWS or a registry itself.
package cli
