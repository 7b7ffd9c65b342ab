// Command gen rewrites the generated sections of the docs (the key reference of
// docs/ecosystem-json.md, the key list of docs/lua.md) from the field tables of host/config.
// Run it as `go generate ./host/config` or `go run ./host/config/gen`, from anywhere in the
// module.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/pmdaemon/pmdaemon/host/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	docs := make([]string, 0, len(config.Generated))
	for doc := range config.Generated {
		docs = append(docs, doc)
	}
	sort.Strings(docs)
	for _, doc := range docs {
		path := filepath.Join(root, doc)
		old, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text, err := config.Regenerate(old, config.Generated[doc])
		if err != nil {
			return fmt.Errorf("%s: %w", doc, err)
		}
		if bytes.Equal(old, text) {
			continue
		}
		if err := os.WriteFile(path, text, 0o644); err != nil {
			return err
		}
		fmt.Println("gen: wrote", doc)
	}
	return nil
}

// moduleRoot is the nearest directory upwards that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above it")
		}
		dir = parent
	}
}
