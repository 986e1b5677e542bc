package template

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

func writeFile(path string, content []byte, perm os.FileMode, backup, mkdirs bool) (bool, error) {
	if path == "" {
		return false, errors.New("template destination: empty path")
	}
	if perm == 0 {
		perm = 0o644
	}
	perm &= fs.ModePerm
	dir := filepath.Dir(path)
	if mkdirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("template destination %s: creating its directory: %w", path, err)
		}
	}
	old, readErr := os.ReadFile(path)
	exists := readErr == nil
	if readErr != nil && !errors.Is(readErr, fs.ErrNotExist) {
		return false, fmt.Errorf("template destination %s: %w", path, readErr)
	}
	if exists && bytes.Equal(old, content) {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != perm {
			if err := os.Chmod(path, perm); err != nil {
				return false, fmt.Errorf("template destination %s: %w", path, err)
			}
		}
		return false, nil
	}
	if exists && backup {
		oldMode := perm
		if fi, err := os.Stat(path); err == nil {
			oldMode = fi.Mode().Perm()
		}
		if err := atomicWrite(path+".bak", old, oldMode); err != nil {
			return false, fmt.Errorf("template destination %s: keeping the backup: %w", path, err)
		}
	}
	if err := atomicWrite(path, content, perm); err != nil {
		return false, fmt.Errorf("template destination %s: %w", path, err)
	}
	return true, nil
}

// atomicWrite writes a temporary file beside path, syncs it, gives it perm
// and renames it over path, then syncs the directory.
func atomicWrite(path string, content []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(name)
		}
	}()
	if _, err = tmp.Write(content); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(name, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // best effort: the rename is done either way
		_ = d.Close()
	}
	return nil
}
