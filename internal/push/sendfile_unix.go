//go:build unix

package push

import (
	"io"
	"os"
	"syscall"
)

// fileOffset reads the offset of a file that someone else may close meanwhile.
type fileOffset interface {
	Offset() (int64, error)
	Close() error
}

// dupOffset is a duplicate descriptor: it shares the file's offset and outlives its Close.
type dupOffset int

func (d dupOffset) Offset() (int64, error) { return syscall.Seek(int(d), 0, io.SeekCurrent) }
func (d dupOffset) Close() error           { return syscall.Close(int(d)) }

// offsetOf returns f's offset reader (false: count the bytes as they are read instead).
func offsetOf(f *os.File) (fileOffset, bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, false
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, dupErr = syscall.Dup(int(s)) }); err != nil || dupErr != nil || fd < 0 {
		return nil, false
	}
	syscall.CloseOnExec(fd)
	return dupOffset(fd), true
}
