// Package e2e is ecrpush's reliability and security suite: it drives the real command line
// (cli.Run, in-process) against the sandbox and checks what users and auditors care about rather
// than what any one package does — pushes and replication that survive injected faults and lose
// nothing (TestFaultMatrix), credentials and registry tokens that expire mid-push
// (TestCredentialExpiry), bad input that is refused before anything is written (TestBadInput),
// forged or mis-scoped identity tokens that are denied with the right diagnosis
// (TestTrustEnforcement), concurrent pushes sharing layers (TestConcurrentPush), and no secret the
// sandbox issued ever reaching an output (TestSecretLeak, and a scan every test runs).
//
// It holds tests only. The default run is bounded to a few minutes on two cores; ECRPUSH_LONG=1
// runs the long variants (more seeds, a push slowed past three minutes of 60 s credentials).
// Fuzz targets for the parsers live next to them (push, replicate, federate, sandbox/iam).
package e2e
