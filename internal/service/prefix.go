package service

import (
	"context"
	"fmt"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
)

// EnvBaseURL is the environment variable every service container gets: the path the browser
// sees the service under, /proxy/<name>/. A keep-mode app gives it to its own base-URL setting.
const EnvBaseURL = "BERTH_BASE_URL"

// ProxyPath is where berth's proxy serves the services.
const ProxyPath = "/proxy/"

// BaseURL is the path the browser sees a service under.
func BaseURL(name string) string { return ProxyPath + name + "/" }

// Mode is the prefix mode of the service's running container, from its image's label
// berth.proxy.prefix (strip when nothing has started yet). Answered from memory, for the proxy.
func (m *Manager) Mode(name string) spec.PrefixMode {
	if v, ok := m.modes.Load(name); ok {
		return v.(spec.PrefixMode)
	}
	return spec.PrefixStrip
}

// notePrefixMode reads the prefix mode from the labels of the image a container of the service
// runs (the built image is the final word: its base may set the label too) and keeps it for
// the proxy. A value other than strip and keep is an error naming the label.
func (m *Manager) notePrefixMode(ctx context.Context, name, image string) error {
	img, err := m.rt.InspectImage(ctx, image)
	if err != nil {
		return fmt.Errorf("read the labels of image %s: %w", image, err)
	}
	mode, err := spec.ParsePrefixMode(img.Labels[spec.LabelProxyPrefix])
	if err != nil {
		return err
	}
	m.modes.Store(name, mode)
	return nil
}

// checkPrefixLabel refuses, when a service is created, a Dockerfile whose final stage sets
// berth.proxy.prefix to neither strip nor keep (once the Dockerfile itself could be read).
func checkPrefixLabel(dockerfile []byte, dfErr error) error {
	if dfErr != nil {
		return nil
	}
	_, err := spec.DockerfilePrefixMode(dockerfile)
	return err
}

// checkImagePrefixLabel refuses a built image whose berth.proxy.prefix (its own or its
// base's) is neither strip nor keep.
func checkImagePrefixLabel(img runtime.Image) error {
	_, err := spec.ParsePrefixMode(img.Labels[spec.LabelProxyPrefix])
	return err
}
