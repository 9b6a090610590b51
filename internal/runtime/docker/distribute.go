package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/berthproject/berth/internal/runtime"
)

var _ runtime.Distributor = (*Engine)(nil)

// encodeAuth is the X-Registry-Auth header: the engine itself runs the registry's token flow
// with a user name and password, or sends a registry token as it is.
func encodeAuth(a runtime.RegistryAuth) (string, error) {
	if a == (runtime.RegistryAuth{}) {
		return "", nil
	}
	return registry.EncodeAuthConfig(registry.AuthConfig{Username: a.Username, Password: a.Password,
		RegistryToken: a.RegistryToken, ServerAddress: a.ServerAddress})
}

// PullImage pulls ref with the engine, writing its progress (one line per layer event, the
// byte counters left out) to progress.
func (e *Engine) PullImage(ctx context.Context, ref string, a runtime.RegistryAuth, progress io.Writer) (runtime.Image, error) {
	enc, err := encodeAuth(a)
	if err != nil {
		return runtime.Image{}, fmt.Errorf("pull image %s: %w", ref, err)
	}
	rc, err := e.cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: enc})
	if err != nil {
		return runtime.Image{}, classify("pull image "+ref, err)
	}
	defer rc.Close()
	if _, err := readProgress(rc, progress); err != nil {
		return runtime.Image{}, fmt.Errorf("pull image %s: %w", ref, err)
	}
	if ctx.Err() != nil {
		return runtime.Image{}, ctx.Err()
	}
	return e.InspectImage(ctx, ref)
}

// PushImage pushes ref with the engine and returns the manifest's digest.
func (e *Engine) PushImage(ctx context.Context, ref string, a runtime.RegistryAuth, progress io.Writer) (string, error) {
	enc, err := encodeAuth(a)
	if err != nil {
		return "", fmt.Errorf("push image %s: %w", ref, err)
	}
	if enc == "" {
		// The engine refuses a push without the header; an empty config is "no credentials".
		enc, _ = registry.EncodeAuthConfig(registry.AuthConfig{})
	}
	rc, err := e.cli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: enc})
	if err != nil {
		return "", classify("push image "+ref, err)
	}
	defer rc.Close()
	digest, err := readProgress(rc, progress)
	if err != nil {
		return "", fmt.Errorf("push image %s: %w", ref, err)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if digest == "" {
		return "", fmt.Errorf("push image %s: the engine reported no digest", ref)
	}
	return digest, nil
}

// TagImage gives src the reference dst.
func (e *Engine) TagImage(ctx context.Context, src, dst string) error {
	return classify("tag image "+src+" as "+dst, e.cli.ImageTag(ctx, src, dst))
}

// readProgress copies an engine progress stream as lines ("<layer>: Pushed"), skipping the
// byte counters, and returns the digest a push reported. An error message in the stream is
// the error.
func readProgress(r io.Reader, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	dec := json.NewDecoder(r)
	digest := ""
	last := map[string]string{}
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return digest, nil
			}
			return digest, fmt.Errorf("read progress: %w", err)
		}
		if m.Error != nil || m.ErrorMessage != "" {
			msg := m.ErrorMessage
			if m.Error != nil {
				msg = m.Error.Message
			}
			fmt.Fprintln(progress, msg)
			return digest, errors.New(msg)
		}
		if m.Aux != nil {
			var aux struct{ Digest string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
				digest = aux.Digest
			}
			continue
		}
		if m.Status == "" || m.Progress != nil && m.ID != "" && last[m.ID] == m.Status {
			continue // the same step's byte counter again
		}
		if m.ID != "" {
			last[m.ID] = m.Status
			fmt.Fprintf(progress, "%s: %s\n", m.ID, m.Status)
		} else {
			fmt.Fprintln(progress, strings.TrimSpace(m.Status))
		}
	}
}
