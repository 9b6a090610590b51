package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// instanceFile holds a data dir's instance id, inside the data dir.
const instanceFile = "instance"

var reInstance = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// dataDirInstance is the instance id of a data dir: the berth.instance label and the name part
// of every container, network and service container the berth using that dir creates, and all
// its reconcile and clean-up ever touches. It is made once, at random, written to
// <dir>/instance, and read back on every later start.
//
// legacy, when not empty, is taken instead of a random id by a data dir that already has a
// store but no instance file: the id its objects were labelled with before the id was kept.
func dataDirInstance(dir, legacy string) (string, error) {
	path := filepath.Join(dir, instanceFile)
	id, err := readInstance(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	id = legacy
	if _, err := os.Stat(filepath.Join(dir, "berth.db")); id == "" || err != nil {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("make an instance id: %w", err)
		}
		id = hex.EncodeToString(b[:])
	}
	// Written aside and linked into place: a link never replaces, so when two starts race the
	// first id stays and both read it.
	tmp, err := os.CreateTemp(dir, ".instance-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(id + "\n")
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return readInstance(path)
}

// readInstance reads an instance file; fs.ErrNotExist when there is none.
func readInstance(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("read instance id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if !reInstance.MatchString(id) {
		return "", fmt.Errorf("%s: %q is not an instance id (lowercase letters, digits and '-', at most 40; remove the file to get a new one)", path, id)
	}
	return id, nil
}
