package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/spec"
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

// recordingEngine is the engine, noting in the image records the image of every container it
// starts (its last use, which the image collector orders by). Every other method, and every
// optional interface the engine implements, is the engine's own.
type recordingEngine struct {
	*docker.Engine
	rec *image.Records
}

var _ runtime.Runtime = recordingEngine{}

func (e recordingEngine) Start(ctx context.Context, t runtime.TaskSpec) (runtime.TaskID, error) {
	id, err := e.Engine.Start(ctx, t)
	if err == nil {
		e.rec.Used(ctx, t.Image, runtime.Image{})
	}
	return id, err
}

// imagePins are the images the collector must keep whatever their age, because nothing in
// the server could build them again: a registered component's image (built by berth component
// register --build on the caller's machine, or loaded by hand) and the image a service runs
// now (a service image is built again only by berth service rebuild). Images they no longer
// use (an older build) stay removable.
func imagePins(st *store.Store) func(ctx context.Context) (map[string]string, error) {
	return func(ctx context.Context) (map[string]string, error) {
		pins := map[string]string{}
		comps, err := st.ComponentImages(ctx)
		if err != nil {
			return nil, err
		}
		for id, ref := range comps {
			pins[ref] = "component " + id + " runs it and the server cannot build it again"
		}
		svcs, err := st.ListServices(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range svcs {
			if s.ImageRef != "" {
				pins[s.ImageRef] = "service " + s.Name + " runs it (berth service rebuild builds it again)"
			}
		}
		return pins, nil
	}
}

// imagePolicy reads the image collector's flags: a limit (0: off) and the high and low
// watermarks as fractions of it.
func imagePolicy(limit string, high, low float64, minIdle time.Duration) (image.Policy, error) {
	n, err := spec.ParseByteSize(limit)
	if err != nil {
		return image.Policy{}, withCode(ExitUsage, fmt.Errorf("--image-disk-limit: %w", err))
	}
	if !(low > 0 && low <= high && high <= 1) {
		return image.Policy{}, withCode(ExitUsage, fmt.Errorf("--image-disk-high %g, --image-disk-low %g: want 0 < low <= high <= 1 (fractions of --image-disk-limit)", high, low))
	}
	if minIdle < 0 {
		return image.Policy{}, withCode(ExitUsage, fmt.Errorf("--image-min-idle: %v is negative", minIdle))
	}
	return image.Policy{Limit: int64(float64(n) * high), Low: int64(float64(n) * low), MinIdle: minIdle}, nil
}
