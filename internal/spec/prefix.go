package spec

import "fmt"

// LabelProxyPrefix is the image label that chooses how berth's proxy hands a service its
// path: LABEL berth.proxy.prefix=keep in the service's Dockerfile.
const LabelProxyPrefix = "berth.proxy.prefix"

// PrefixMode is how the proxy passes /proxy/<name>/… to a service.
type PrefixMode string

const (
	// PrefixStrip (the default): the service sees /…; berth rewrites the Location headers and
	// Set-Cookie paths it answers into /proxy/<name>/.
	PrefixStrip PrefixMode = "strip"
	// PrefixKeep: the service sees the full path /proxy/<name>/… and is told it in
	// BERTH_BASE_URL; nothing it answers is rewritten (for apps with a base-URL setting).
	PrefixKeep PrefixMode = "keep"
)

// ParsePrefixMode reads the label's value. An empty value is the default, strip (an image
// cannot remove a label its base set, only empty it).
func ParsePrefixMode(v string) (PrefixMode, error) {
	switch PrefixMode(v) {
	case "", PrefixStrip:
		return PrefixStrip, nil
	case PrefixKeep:
		return PrefixKeep, nil
	}
	return "", fmt.Errorf("label %s=%q: allowed: %s (the default), %s", LabelProxyPrefix, v, PrefixStrip, PrefixKeep)
}

// DockerfilePrefixMode reads berth.proxy.prefix from the final stage of a service's
// Dockerfile (LABEL lines, ARG and ENV expanded). Without the label it is strip; the built
// image's own labels (a base image may set it too) are the final word.
func DockerfilePrefixMode(dockerfile []byte) (PrefixMode, error) {
	stages, err := parseDockerfile(dockerfile, nil)
	if err != nil {
		return "", err
	}
	if len(stages) == 0 {
		return PrefixStrip, nil
	}
	l, ok := stages[len(stages)-1].labels[LabelProxyPrefix]
	if !ok {
		return PrefixStrip, nil
	}
	mode, err := ParsePrefixMode(l.value)
	if err != nil {
		return "", &ValidationError{File: "Dockerfile", Problems: []Problem{{Field: "LABEL " + LabelProxyPrefix, Line: l.line,
			Message: fmt.Sprintf("%q: allowed: %s (the default), %s", l.value, PrefixStrip, PrefixKeep)}}}
	}
	return mode, nil
}
