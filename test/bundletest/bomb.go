// Package bundletest builds gzip bombs shaped like bundle tarballs for tests of the bundle
// size bounds. It imports nothing of gavel's, so engine/policy's own tests can use it.
package bundletest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// Bomb is a bundle-shaped tarball of files zero-filled files of size bytes each (size a
// multiple of 512), named /gavel/dNNNN.json. Zeros compress about 1000:1, so a few MiB
// of expansion ride in a few KiB.
//
// It is built from concatenated gzip members (every gzip reader in Go, OPA's included,
// reads them as one stream): the zeros of a file are compressed once and repeated, which
// keeps building a bomb cheap even under the race detector.
func Bomb(files int, size int64) []byte {
	if size%512 != 0 {
		panic(fmt.Sprintf("bundletest.Bomb: size %d is not a multiple of 512", size))
	}
	zeros := member(func(w io.Writer) { io.Copy(w, io.LimitReader(zeroReader{}, size)) })
	var out bytes.Buffer
	for i := range files {
		out.Write(member(func(w io.Writer) {
			// The header alone: a tar.Writer checks that size bytes follow it, so its
			// block is taken from a writer that is then abandoned.
			var hb bytes.Buffer
			tw := tar.NewWriter(&hb)
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("/gavel/d%04d.json", i), Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
			tw.Flush()
			w.Write(hb.Bytes())
		}))
		out.Write(zeros)
	}
	out.Write(member(func(w io.Writer) { w.Write(make([]byte, 1024)) })) // end of archive
	return out.Bytes()
}

func member(write func(io.Writer)) []byte {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	write(gz)
	gz.Close()
	return buf.Bytes()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
