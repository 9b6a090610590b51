package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseByteSize reads "512m", "1.5g", "64k", "512MiB", "1024" (bytes). Units are binary.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	mult := 1.0
	for _, u := range []struct {
		suf string
		m   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"tb", 1 << 40},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size (write e.g. 512m, 2g, 64k or a number of bytes)", s)
	}
	return ByteSize(f * mult), nil
}

// ParseDuration reads "30s", "5m", "1h30m" or a number of seconds.
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		if f < 0 || f > float64(math.MaxInt64/int64(time.Second)) || math.IsNaN(f) {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write e.g. 30s, 5m, 1h30m or a number of seconds)", s)
	}
	return Duration(d), nil
}

// UnmarshalJSON accepts a number of bytes or a size string.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		if x < 0 || x > math.MaxInt64/2 {
			return fmt.Errorf("size %v is out of range", x)
		}
		*b = ByteSize(x)
		return nil
	case string:
		n, err := ParseByteSize(x)
		*b = n
		return err
	}
	return fmt.Errorf("a size is a number of bytes or a string like 512m")
}

// MarshalJSON writes bytes as a number.
func (b ByteSize) MarshalJSON() ([]byte, error) { return []byte(strconv.FormatInt(int64(b), 10)), nil }

// UnmarshalYAML accepts a number of bytes or a size string.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("a size is a number of bytes or a string like 512m")
	}
	v, err := ParseByteSize(n.Value)
	*b = v
	return err
}

// MarshalYAML writes bytes as a number.
func (b ByteSize) MarshalYAML() (any, error) { return int64(b), nil }

// UnmarshalJSON accepts a number of seconds or a duration string.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		p, err := ParseDuration(strconv.FormatFloat(x, 'f', -1, 64))
		*d = p
		return err
	case string:
		p, err := ParseDuration(x)
		*d = p
		return err
	}
	return fmt.Errorf("a duration is a number of seconds or a string like 30s")
}

// MarshalJSON writes a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalYAML accepts a number of seconds or a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("a duration is a number of seconds or a string like 30s")
	}
	v, err := ParseDuration(n.Value)
	*d = v
	return err
}

// MarshalYAML writes a duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalJSON accepts a scalar or {value, secret}.
func (e *EnvVar) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	if m, ok := v.(map[string]any); ok {
		*e = EnvVar{Value: scalarString(m["value"])}
		if s, ok := m["secret"].(bool); ok {
			e.Secret = s
		}
		return nil
	}
	*e = EnvVar{Value: scalarString(v)}
	return nil
}

// Hidden is what a secret value is shown as.
const Hidden = "[hidden]"

// MarshalJSON writes a plain string, or {value: "[hidden]", secret: true} for a secret: a
// secret's value never leaves berth through JSON (the store keeps it with StoredEnv).
func (e EnvVar) MarshalJSON() ([]byte, error) {
	if !e.Secret {
		return json.Marshal(e.Value)
	}
	return json.Marshal(StoredEnv{Hidden, true})
}

// StoredEnv is an env value as the store keeps it, secret values included.
type StoredEnv struct {
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
}

// UnmarshalYAML accepts a scalar or {value, secret}.
func (e *EnvVar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*e = EnvVar{Value: n.Value}
		return nil
	}
	var raw struct {
		Value  string `yaml:"value"`
		Secret bool   `yaml:"secret"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	*e = EnvVar{Value: raw.Value, Secret: raw.Secret}
	return nil
}

// MarshalYAML writes a plain string unless the value is secret.
func (e EnvVar) MarshalYAML() (any, error) {
	if !e.Secret {
		return e.Value, nil
	}
	return map[string]any{"value": e.Value, "secret": true}, nil
}

func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}
