package cli

import "io"

type io_ReadCloser = io.ReadCloser

func nopCloser(r io.Reader) io.ReadCloser { return io.NopCloser(r) }
