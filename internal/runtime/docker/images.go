package docker

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/berthproject/berth/internal/runtime"
)

func isNotFound(err error) bool { return errors.Is(err, runtime.ErrNotFound) }

// InspectImage returns the image a tag or ID names, or ErrNotFound.
func (e *Engine) InspectImage(ctx context.Context, ref string) (runtime.Image, error) {
	ins, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		return runtime.Image{}, classify("inspect image "+ref, err)
	}
	img := runtime.Image{ID: ins.ID, Tags: ins.RepoTags, Size: ins.Size, RepoDigests: ins.RepoDigests}
	if ins.Config != nil {
		img.Labels = ins.Config.Labels
		for p := range ins.Config.ExposedPorts {
			img.ExposedPorts = append(img.ExposedPorts, string(p))
		}
		sort.Strings(img.ExposedPorts)
	}
	img.Created, _ = time.Parse(time.RFC3339Nano, ins.Created)
	return img, nil
}

// ListImages returns the images carrying every label.
func (e *Engine) ListImages(ctx context.Context, labels map[string]string) ([]runtime.Image, error) {
	f := filters.NewArgs()
	for _, l := range labelFilter(labels) {
		f.Add("label", l)
	}
	list, err := e.cli.ImageList(ctx, image.ListOptions{Filters: f})
	if err != nil {
		return nil, classify("list images", err)
	}
	out := make([]runtime.Image, 0, len(list))
	for _, im := range list {
		out = append(out, runtime.Image{ID: im.ID, Tags: im.RepoTags, Labels: im.Labels, Size: im.Size, Created: time.Unix(im.Created, 0)})
	}
	return out, nil
}

// RemoveImage removes an image; an absent one is fine.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	_, err := e.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	err = classify("remove image "+ref, err)
	if err == nil || isNotFound(err) {
		return nil
	}
	return err
}

// BuildImage builds an image with the engine's builder, streaming its output to progress.
func (e *Engine) BuildImage(ctx context.Context, b runtime.BuildSpec, progress io.Writer) (runtime.Image, error) {
	if progress == nil {
		progress = io.Discard
	}
	if len(b.Tags) == 0 {
		return runtime.Image{}, errors.New("build image: no tag")
	}
	ctxReader := b.Context
	if ctxReader == nil {
		if b.ContextDir == "" {
			return runtime.Image{}, errors.New("build image: no context")
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarDir(b.ContextDir, pw)) }()
		defer pr.Close()
		ctxReader = pr
	}
	labels := map[string]string{runtime.LabelManaged: "true"}
	for k, v := range b.Labels {
		labels[k] = v
	}
	args := map[string]*string{}
	for k, v := range b.BuildArgs {
		v := v
		args[k] = &v
	}
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	resp, err := e.cli.ImageBuild(ctx, ctxReader, build.ImageBuildOptions{
		Tags: b.Tags, Labels: labels, BuildArgs: args, NetworkMode: b.Network, NoCache: b.NoCache,
		Remove: true, ForceRemove: true, Dockerfile: dockerfile, Version: build.BuilderV1,
	})
	if err != nil {
		return runtime.Image{}, classify("build image "+b.Tags[0], err)
	}
	defer resp.Body.Close()
	var tail []string
	keep := func(s string) {
		for _, line := range strings.SplitAfter(s, "\n") {
			if line == "" {
				continue
			}
			tail = append(tail, line)
			if len(tail) > 200 {
				tail = tail[len(tail)-200:]
			}
		}
	}
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return runtime.Image{}, fmt.Errorf("build image %s: read output: %w", b.Tags[0], err)
		}
		if m.Error != nil || m.ErrorMessage != "" {
			msg := m.ErrorMessage
			if m.Error != nil {
				msg = m.Error.Message
			}
			fmt.Fprintln(progress, msg)
			keep(msg + "\n")
			return runtime.Image{}, &runtime.BuildError{Message: msg, Log: strings.Join(tail, "")}
		}
		if m.Stream != "" {
			io.WriteString(progress, m.Stream)
			keep(m.Stream)
		} else if m.Status != "" {
			fmt.Fprintln(progress, m.Status)
		}
	}
	if ctx.Err() != nil {
		return runtime.Image{}, ctx.Err()
	}
	return e.InspectImage(ctx, b.Tags[0])
}

// ImportImage makes an image from a root filesystem tarball.
func (e *Engine) ImportImage(ctx context.Context, rootfs io.Reader, ref string, changes []string, labels map[string]string) (runtime.Image, error) {
	all := map[string]string{runtime.LabelManaged: "true"}
	for k, v := range labels {
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ch := append([]string(nil), changes...)
	for _, k := range keys {
		ch = append(ch, "LABEL "+strconv.Quote(k)+"="+strconv.Quote(all[k]))
	}
	rc, err := e.cli.ImageImport(ctx, image.ImportSource{Source: rootfs, SourceName: "-"}, ref, image.ImportOptions{Changes: ch})
	if err != nil {
		return runtime.Image{}, classify("import image "+ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return runtime.Image{}, fmt.Errorf("import image %s: %w", ref, err)
		}
		if m.Error != nil {
			return runtime.Image{}, fmt.Errorf("import image %s: %s", ref, m.Error.Message)
		}
	}
	return e.InspectImage(ctx, ref)
}

// tarDir writes dir as a tar stream (regular files, dirs and symlinks, modes kept).
func tarDir(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
