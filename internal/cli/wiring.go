package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/store"
)

// adminTokenFile is where the server writes the first admin token, inside --data-dir.
const adminTokenFile = "admin-token"

// secretKeyFile is the key the secrets the store keeps (configurations' credentials, entities,
// jobs' secret env values) are sealed with, inside --data-dir (mode 0600), unless
// BERTH_SECRET_KEY holds it. Losing it makes them unreadable: back it up apart from the database.
const secretKeyFile = "secret.key"

// loadSealer is the sealer of dataDir's secrets: the key in BERTH_SECRET_KEY, or else the key
// file in dataDir (created when missing).
func loadSealer(dataDir string) (*auth.Sealer, error) {
	return auth.LoadKey(filepath.Join(dataDir, secretKeyFile))
}

// sealStore gives st its sealer and seals what an older berth stored in plain text (once:
// the next start finds nothing to seal), saying so on w.
func sealStore(ctx context.Context, st *store.Store, s *auth.Sealer, w io.Writer) error {
	st.SetSealer(s)
	n, err := st.SealExisting(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(w, "berth: sealed the secrets of %d stored jobs and entities kept in plain text by an older berth\n", n)
	}
	return nil
}

// openEngine connects to the container engine. Today that is the local Docker Engine (or
// DOCKER_HOST); other backends are chosen here when they exist.
func openEngine(ctx context.Context, instance string) (*docker.Engine, error) {
	eng, err := docker.New(ctx, docker.Options{Instance: instance})
	if err != nil {
		if errors.Is(err, runtime.ErrUnavailable) {
			return nil, fmt.Errorf("%w\n  berth needs a running Docker Engine (is dockerd up? is DOCKER_HOST right?)", err)
		}
		return nil, err
	}
	return eng, nil
}

// probeEngine asks the engine what it can enforce and says it in one line on w.
func probeEngine(ctx context.Context, eng *docker.Engine, w io.Writer) (runtime.Capabilities, error) {
	caps, err := eng.Capabilities(ctx)
	if err != nil {
		return caps, err
	}
	fmt.Fprintf(w, "berth: engine: %s\n", caps)
	return caps, nil
}

// openStore opens the embedded SQLite store in dir.
func openStore(ctx context.Context, dir string) (*store.Store, error) {
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "berth.db"))
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	return st, nil
}

// imageConfig is the image manager's configuration for a data dir.
func imageConfig(dataDir, pipIndex, cranURL string) image.Config {
	cfg := image.DefaultConfig()
	cfg.LogDir = filepath.Join(dataDir, "image-logs")
	if pipIndex != "" {
		cfg.PipIndexURL = pipIndex
	}
	if cranURL != "" {
		cfg.CRANURL = cranURL
	}
	return cfg
}

func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
