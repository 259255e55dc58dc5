//go:build !unix

package push

import "os"

// fileOffset reads the offset of a file that someone else may close meanwhile.
type fileOffset interface {
	Offset() (int64, error)
	Close() error
}

// offsetOf: without dup(2) uploads count their bytes as they are read (no sendfile).
func offsetOf(*os.File) (fileOffset, bool) { return nil, false }
