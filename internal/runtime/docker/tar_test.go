package docker_test

import (
	"archive/tar"
	"io"
	"testing"
)

func writeTar(t *testing.T, w io.Writer, name string, data []byte) {
	t.Helper()
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
}
