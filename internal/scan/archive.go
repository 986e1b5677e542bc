package scan

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path"
	"strings"
)

// Archives are opened only when asked (--max-archive-depth, as in
// gitleaks): zip (and jar, war, ear, apk, whl), tar, tar.gz/tgz and single
// .gz files. A finding inside names the file "outer.zip!inner/path", one
// "!" per level. Nothing is extracted to disk; each entry is read into
// memory within the size limit, and the total an archive may expand to is
// bounded, so a zip bomb costs a bounded read and is then skipped.

// maxArchiveExpansion bounds the bytes read out of one archive, nested
// ones included.
const maxArchiveExpansion = 1 << 30

// defaultArchiveEntryBytes bounds one entry when no --max-target-megabytes
// is given.
const defaultArchiveEntryBytes = 256 << 20

func archiveKind(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return "tgz"
	case strings.HasSuffix(n, ".tar"):
		return "tar"
	case strings.HasSuffix(n, ".gz"):
		return "gz"
	}
	switch path.Ext(n) {
	case ".zip", ".jar", ".war", ".ear", ".apk", ".whl", ".nupkg", ".aar":
		return "zip"
	}
	return ""
}

// archiveScan walks one archive and the archives inside it.
type archiveScan struct {
	d        *Detector
	maxDepth int
	maxEntry int64
	budget   int64 // bytes left to read out of the outermost archive
	out      []Finding
}

// scanArchiveFile scans the archive at p, reported as rel.
func (d *Detector) scanArchiveFile(p, rel string, maxDepth int, maxEntry int64) []Finding {
	if maxEntry <= 0 {
		maxEntry = defaultArchiveEntryBytes
	}
	a := &archiveScan{d: d, maxDepth: maxDepth, maxEntry: maxEntry, budget: maxArchiveExpansion}
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	a.walk(f, st.Size(), rel, archiveKind(p), 1)
	return a.out
}

// walk reads the entries of one archive at nesting depth (1 for a file on
// disk).
func (a *archiveScan) walk(r io.ReaderAt, size int64, name, kind string, depth int) {
	switch kind {
	case "zip":
		zr, err := zip.NewReader(r, size)
		if err != nil {
			return
		}
		for _, zf := range zr.File {
			if zf.FileInfo().IsDir() || a.budget <= 0 {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				continue
			}
			a.entry(rc, name+"!"+zf.Name, depth)
			rc.Close()
		}
	case "tar", "tgz":
		var src io.Reader = io.NewSectionReader(r, 0, size)
		if kind == "tgz" {
			gz, err := gzip.NewReader(src)
			if err != nil {
				return
			}
			defer gz.Close()
			src = gz
		}
		tr := tar.NewReader(src)
		for a.budget > 0 {
			h, err := tr.Next()
			if err != nil {
				return
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			a.entry(tr, name+"!"+h.Name, depth)
		}
	case "gz":
		gz, err := gzip.NewReader(io.NewSectionReader(r, 0, size))
		if err != nil {
			return
		}
		defer gz.Close()
		inner := strings.TrimSuffix(path.Base(name), path.Ext(name))
		if gz.Name != "" {
			inner = gz.Name
		}
		a.entry(gz, name+"!"+inner, depth)
	}
}

// entry reads one member: an archive within the depth limit is walked, a
// text file is scanned, anything else is skipped.
func (a *archiveScan) entry(r io.Reader, name string, depth int) {
	limit := min(a.maxEntry, a.budget)
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil || int64(len(data)) > limit {
		a.budget -= int64(len(data))
		return
	}
	a.budget -= int64(len(data))
	if kind := archiveKind(name); kind != "" {
		if depth < a.maxDepth {
			a.walk(bytes.NewReader(data), int64(len(data)), name, kind, depth+1)
		}
		return
	}
	if bytes.IndexByte(data[:min(len(data), 8192)], 0) >= 0 {
		return
	}
	a.out = append(a.out, a.d.scanFile(data, name)...)
}
