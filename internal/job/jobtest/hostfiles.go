package jobtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// HostFiles are files outside every job folder that a hostile container points links at.
type HostFiles struct {
	Dir      string
	Marker   string // in every file's content
	CSV      string // a CSV table
	Manifest string // a valid output table manifest
	State    string // a JSON object
	Victim   string // a file berth must never write to
}

// NewHostFiles writes the files in a folder of the test's own.
func NewHostFiles(t *testing.T) HostFiles {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	h := HostFiles{Dir: t.TempDir(), Marker: "HOSTSECRET" + hex.EncodeToString(b[:])}
	h.CSV = filepath.Join(h.Dir, "secret.csv")
	h.Manifest = filepath.Join(h.Dir, "secret.manifest")
	h.State = filepath.Join(h.Dir, "secret.json")
	h.Victim = filepath.Join(h.Dir, "victim.txt")
	for p, s := range map[string]string{
		h.CSV:      "secret\n" + h.Marker + "\n",
		h.Manifest: `{"destination": "out.c-main.stolen", "columns": ["` + h.Marker + `"]}`,
		h.State:    `{"secret": "` + h.Marker + `"}`,
		h.Victim:   "ORIGINAL " + h.Marker + "\n",
	} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return h
}
