package datadir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// List is a JSON array in a storage mapping. Keboola still accepts the older object form of
// these arrays, {"0": {...}, "1": {...}}, and real configurations still carry it, so List
// reads both: an object's members are taken in the order of their keys (numeric keys by
// value, then the others by name). null is an empty list. It always writes an array.
//
// Each element is decoded strictly: an unknown key is an error naming its JSON path, as is a
// value of the wrong JSON type.
type List[T any] []T

// UnmarshalJSON accepts an array, an object keyed by position, or null.
func (l *List[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*l = nil
		return nil
	}
	type item struct {
		key string
		raw json.RawMessage
	}
	var items []item
	switch b[0] {
	case '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			return &PathError{Message: "must be an array"}
		}
		for i, r := range raws {
			items = append(items, item{strconv.Itoa(i), r})
		}
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return &PathError{Message: "must be an array"}
		}
		for k, r := range obj {
			items = append(items, item{k, r})
		}
		sort.Slice(items, func(i, j int) bool { return keyLess(items[i].key, items[j].key) })
	default:
		return &PathError{Message: "must be an array (or an object keyed by position)"}
	}
	out := make(List[T], 0, len(items))
	for i, it := range items {
		var v T
		if err := DecodeStrict(it.raw, &v); err != nil {
			return prefixPath(fmt.Sprintf("[%d]", i), err)
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

func keyLess(a, b string) bool {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	switch {
	case aerr == nil && berr == nil:
		return ai < bi
	case aerr == nil:
		return true
	case berr == nil:
		return false
	}
	return a < b
}

// PathError is a value in a JSON document that cannot be read: Path is where (in the
// document's own terms, e.g. storage.input.tables[0].columns), Message what is allowed.
type PathError struct {
	Path    string
	Message string
}

func (e *PathError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

func prefixPath(prefix string, err error) error {
	pe, ok := err.(*PathError)
	if !ok {
		return &PathError{Path: prefix, Message: err.Error()}
	}
	p := pe.Path
	switch {
	case p == "":
		p = prefix
	case strings.HasPrefix(p, "["):
		p = prefix + p
	default:
		p = prefix + "." + p
	}
	return &PathError{Path: p, Message: pe.Message}
}

// DecodeStrict decodes one JSON value into v, refusing unknown keys, and turns the decoder's
// errors into a *PathError in JSON terms (never a Go type name).
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return &PathError{Message: "unexpected data after the JSON value"}
		}
		return nil
	}
	return jsonPathError(err)
}

// jsonPathError translates encoding/json's errors.
func jsonPathError(err error) error {
	if pe, ok := err.(*PathError); ok {
		return pe
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &PathError{Path: strings.Trim(f, `"`), Message: "unknown field"}
	}
	var ute *json.UnmarshalTypeError
	if e, ok := err.(*json.UnmarshalTypeError); ok {
		ute = e
	}
	if ute != nil {
		return &PathError{Path: ute.Field, Message: "must be " + JSONKind(ute.Type) + ", not " + ute.Value}
	}
	var se *json.SyntaxError
	if e, ok := err.(*json.SyntaxError); ok {
		se = e
	}
	if se != nil {
		return &PathError{Message: fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	}
	return &PathError{Message: strings.TrimPrefix(msg, "json: ")}
}

// JSONKind names a Go type the way a JSON document's author thinks of it.
func JSONKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if strings.HasPrefix(t.Name(), "List[") {
		return "an array"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return JSONKind(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Interface:
		return "a JSON value"
	}
	return "a value"
}

// DecodeObject decodes a JSON object whose members go into the given targets, one per key,
// refusing keys it does not list. An error names the member's path (a nested error is
// prefixed with its key), so a caller several objects up still learns exactly where it was.
func DecodeObject(data []byte, fields map[string]any) error {
	_, err := decodeObject(data, fields, false)
	return err
}

// DecodeTolerant is DecodeObject for what a container wrote: a key it does not list is not an
// error but a warning (returned, to be shown in the job's log); a listed key with a bad value
// is still an error naming it.
func DecodeTolerant(data []byte, fields map[string]any) (unknown []string, err error) {
	return decodeObject(data, fields, true)
}

func decodeObject(data []byte, fields map[string]any, tolerant bool) ([]string, error) {
	var unknown []string
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return nil, &PathError{Message: "must be an object"}
		}
		return nil, jsonPathError(err)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		target, ok := fields[k]
		if !ok {
			if tolerant {
				unknown = append(unknown, k)
				continue
			}
			return nil, &PathError{Path: k, Message: "unknown field"}
		}
		if err := DecodeStrict(obj[k], target); err != nil {
			return unknown, prefixPath(k, err)
		}
	}
	return unknown, nil
}
