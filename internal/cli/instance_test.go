package cli

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestDataDirInstance(t *testing.T) {
	dir := t.TempDir()
	id, err := dataDirInstance(dir, "")
	if err != nil || !reInstance.MatchString(id) || len(id) != 12 {
		t.Fatalf("first id %q %v", id, err)
	}
	again, err := dataDirInstance(dir, "legacy")
	if err != nil || again != id {
		t.Fatalf("second start: %q %v, want %q", again, err, id)
	}
	fi, err := os.Stat(filepath.Join(dir, instanceFile))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("instance file: %v %v", fi, err)
	}
	if other, _ := dataDirInstance(t.TempDir(), ""); other == id {
		t.Fatalf("two data dirs got the same id %q", id)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".instance-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// Starts racing on a new data dir all get the one id.
	race := t.TempDir()
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); ids[i], _ = dataDirInstance(race, "") }()
	}
	wg.Wait()
	for _, x := range ids {
		if x != ids[0] || x == "" {
			t.Fatalf("racing starts got %v", ids)
		}
	}

	// A data dir with a store from before the file existed keeps its old id; a new one does not.
	old := t.TempDir()
	os.WriteFile(filepath.Join(old, "berth.db"), nil, 0o644)
	if got, err := dataDirInstance(old, "srv-0123456789"); err != nil || got != "srv-0123456789" {
		t.Fatalf("legacy data dir: %q %v", got, err)
	}
	if got, _ := dataDirInstance(t.TempDir(), "srv-0123456789"); got == "srv-0123456789" {
		t.Fatal("a new data dir took the legacy id")
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, instanceFile), []byte("Not An ID\n"), 0o644)
	if _, err := dataDirInstance(bad, ""); err == nil {
		t.Fatal("a malformed instance file was accepted")
	}
}
