package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/store"
)

// Kinds of image records.
const (
	KindBase      = "base"      // a language's base runtime: never removed
	KindGenerated = "generated" // berth/gen:<hash>, rebuilt from the spec hash at next use
	KindService   = "service"   // berth/svc-<name>:<hash>, rebuilt from the stored context
	KindComponent = "component" // berth/component-<id>:<hash>, built by component register --build
	KindCustom    = "custom"    // anything else berth used (a block's image:, a component's image)
)

// Retention labels: a custom image carrying one with the value prune-on-cleanup opts in to
// removal by the collector (visokio-image-retention is Omniscope's spelling).
const (
	LabelRetention          = "berth.retention"
	LabelRetentionOmni      = "visokio-image-retention"
	RetentionPruneOnCleanup = "prune-on-cleanup"
)

// Record is an image berth builds or uses, as `berth image ls` and GET /api/v1/images show it.
// The engine says what exists (ID, size, labels, created); the store says when it was last
// used; InUse, Removable and Keep are computed when the list is made.
type Record struct {
	Ref      string            `json:"ref"`
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Size     int64             `json:"size"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
	LastUsed *time.Time        `json:"last_used"`
	// InUse: a running container of this berth instance runs it.
	InUse bool `json:"in_use"`
	// Removable: the collector may evict it (generated, service and component images, and
	// images labelled prune-on-cleanup; never a base image).
	Removable bool `json:"removable"`
	// Keep says why a removable image is kept whatever its age (nothing could rebuild it).
	Keep string `json:"keep,omitempty"`
}

// used is when the record counts as last used: its last use, or else its creation.
func (r Record) used() time.Time {
	if r.LastUsed != nil {
		return *r.LastUsed
	}
	return r.Created
}

// KindOf is the kind of an image from its labels, or else from its tag.
//
// An image inherits its parent's labels: a custom image built FROM a base runtime carries
// berth.kind=base too. One labelled prune-on-cleanup as well is custom (it opted in to
// removal); the base runtimes' own tags are base whatever their labels.
func KindOf(ref string, labels map[string]string) string {
	for _, r := range recipes {
		if r.ref == ref {
			return KindBase
		}
	}
	switch labels[runtime.LabelKind] {
	case runtime.KindBase:
		if !pruneLabelled(labels) {
			return KindBase
		}
		return KindCustom
	case runtime.KindGenerated:
		return KindGenerated
	case runtime.KindService:
		return KindService
	case runtime.KindComponent:
		return KindComponent
	}
	switch {
	case strings.HasPrefix(ref, "berth/gen:"):
		return KindGenerated
	case strings.HasPrefix(ref, "berth/svc-"):
		return KindService
	case strings.HasPrefix(ref, "berth/component-"):
		return KindComponent
	}
	return KindCustom
}

// Removable says whether the collector may evict an image of kind with labels.
func Removable(kind string, labels map[string]string) bool {
	switch kind {
	case KindBase:
		return false
	case KindGenerated, KindService, KindComponent:
		return true
	}
	return pruneLabelled(labels)
}

func pruneLabelled(labels map[string]string) bool {
	return labels[LabelRetention] == RetentionPruneOnCleanup || labels[LabelRetentionOmni] == RetentionPruneOnCleanup
}

// RecordStore keeps image records (store.Store does).
type RecordStore interface {
	PutImageRecord(ctx context.Context, r store.ImageRecord) error
	ImageRecords(ctx context.Context) ([]store.ImageRecord, error)
	DeleteImageRecord(ctx context.Context, ref string) error
}

// Records notes every use of an image and lists what berth has. Safe for concurrent use.
//
// The images it knows are those recorded in its store (every image Ensure handed out and every
// image a container of this instance started from), those labelled with its instance, and the
// base runtimes. An image of another berth on the same engine is never listed or removed
// unless this berth used it too.
type Records struct {
	rt       runtime.Runtime
	st       RecordStore
	instance string
	log      *slog.Logger
	now      func() time.Time
	// Pins, when set, names images that must be kept whatever their age, with why (a
	// registered component's image, which berth cannot rebuild).
	Pins func(ctx context.Context) (map[string]string, error)
	// OnBuilt is called after each image berth builds is recorded (the collector's kick).
	OnBuilt func()
}

// NewRecords makes the image records of one berth instance.
func NewRecords(rt runtime.Runtime, st RecordStore, instance string, log *slog.Logger) *Records {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Records{rt: rt, st: st, instance: instance, log: log, now: time.Now}
}

// Used records that ref (img, when known) was used now. A failure is logged, never returned:
// a run never fails because its image's use could not be noted.
func (r *Records) Used(ctx context.Context, ref string, img runtime.Image) {
	if r == nil {
		return // a manager without records (berth run)
	}
	r.usedAt(ctx, ref, img, r.now())
}

// UsedAt is Used at a given time (tests backdate uses with it).
func (r *Records) UsedAt(ctx context.Context, ref string, img runtime.Image, at time.Time) error {
	return r.usedAt(ctx, ref, img, at)
}

func (r *Records) usedAt(ctx context.Context, ref string, img runtime.Image, at time.Time) error {
	if r == nil || ref == "" {
		return nil
	}
	rec := store.ImageRecord{Ref: ref, ImageID: img.ID, Size: img.Size, Labels: img.Labels, Created: img.Created, LastUsed: at.UTC()}
	if img.ID != "" {
		rec.Kind = KindOf(ref, img.Labels)
	}
	if err := r.st.PutImageRecord(context.WithoutCancel(ctx), rec); err != nil {
		r.log.Warn("record image use", "image", ref, "err", err)
		return err
	}
	return nil
}

// Built records an image berth just built, then tells OnBuilt.
func (r *Records) Built(ctx context.Context, ref string, img runtime.Image) {
	if r == nil {
		return
	}
	r.Used(ctx, ref, img)
	if r.OnBuilt != nil {
		r.OnBuilt()
	}
}

// List returns the images berth knows, least recently used first.
func (r *Records) List(ctx context.Context) ([]Record, error) {
	stored, err := r.st.ImageRecords(ctx)
	if err != nil {
		return nil, err
	}
	all, err := r.rt.ListImages(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	byTag := map[string]runtime.Image{}
	byID := map[string]runtime.Image{}
	for _, im := range all {
		byID[im.ID] = im
		for _, t := range im.Tags {
			byTag[t] = im
		}
	}
	pins := map[string]string{}
	if r.Pins != nil {
		if pins, err = r.Pins(ctx); err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
	}
	running := map[string]bool{}
	if r.instance != "" {
		tasks, err := r.rt.List(ctx, map[string]string{runtime.LabelInstance: r.instance})
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		for _, t := range tasks {
			if t.Running {
				running[t.Image] = true
			}
		}
	}
	seen := map[string]bool{}
	var out []Record
	add := func(ref string, im runtime.Image, lastUsed *time.Time) {
		if seen[ref] {
			return
		}
		seen[ref] = true
		rec := Record{Ref: ref, ID: im.ID, Size: im.Size, Labels: im.Labels, Created: im.Created, LastUsed: lastUsed}
		rec.Kind = KindOf(ref, im.Labels)
		rec.Removable = Removable(rec.Kind, im.Labels)
		rec.InUse = running[ref] || running[im.ID] || running[strings.TrimPrefix(im.ID, "sha256:")]
		rec.Keep = pins[ref]
		out = append(out, rec)
	}
	for _, s := range stored {
		im, ok := byTag[s.Ref]
		if !ok {
			im, ok = byID[s.Ref]
		}
		if !ok {
			continue // gone from the engine: evicted, or removed by hand
		}
		lu := s.LastUsed
		add(s.Ref, im, &lu)
	}
	for _, im := range all {
		// This instance's own images, and the base runtimes (never another berth's images,
		// nor a custom image that inherited a base's labels, unless this berth used them).
		owner := im.Labels[runtime.LabelInstance]
		if owner != "" && owner != r.instance {
			continue
		}
		mine := r.instance != "" && owner == r.instance
		for _, t := range im.Tags {
			if t != "<none>:<none>" && (mine || KindOf(t, im.Labels) == KindBase) {
				add(t, im, nil)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := out[i].used(), out[j].used(); !a.Equal(b) {
			return a.Before(b)
		}
		return out[i].Ref < out[j].Ref
	})
	return out, nil
}

// Errors of Remove.
var (
	ErrNotRecorded = errors.New("image: not one of berth's images")
	ErrBaseImage   = errors.New("image: base images are never removed")
	ErrInUse       = errors.New("image: in use by a running container")
)

// Remove removes one of berth's images (not a base image, not one in use) and forgets it. A
// generated or service image is rebuilt at its next use.
func (r *Records) Remove(ctx context.Context, ref string) (Record, error) {
	list, err := r.List(ctx)
	if err != nil {
		return Record{}, err
	}
	for _, rec := range list {
		if rec.Ref != ref {
			continue
		}
		switch {
		case rec.Kind == KindBase:
			return rec, fmt.Errorf("remove %s: %w (rebuild one with berth runtime bootstrap)", ref, ErrBaseImage)
		case rec.InUse:
			return rec, fmt.Errorf("remove %s: %w", ref, ErrInUse)
		}
		return rec, r.remove(ctx, rec)
	}
	// A record of an image gone from the engine is forgotten all the same.
	stored, err := r.st.ImageRecords(ctx)
	if err != nil {
		return Record{}, err
	}
	for _, s := range stored {
		if s.Ref == ref {
			return Record{Ref: ref, Kind: s.Kind}, r.st.DeleteImageRecord(ctx, ref)
		}
	}
	return Record{}, fmt.Errorf("remove %s: %w", ref, ErrNotRecorded)
}

func (r *Records) remove(ctx context.Context, rec Record) error {
	if err := r.rt.RemoveImage(ctx, rec.Ref); err != nil {
		if errors.Is(err, runtime.ErrConflict) {
			return fmt.Errorf("remove %s: %w (the engine says: %v)", rec.Ref, ErrInUse, err)
		}
		return fmt.Errorf("remove %s: %w", rec.Ref, err)
	}
	r.log.Info("image removed", "image", rec.Ref, "kind", rec.Kind, "size", rec.Size)
	return r.st.DeleteImageRecord(ctx, rec.Ref)
}
