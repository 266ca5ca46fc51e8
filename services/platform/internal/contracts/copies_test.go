package contracts

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"platform/schemas"
)

// schemaPatterns lists every "pattern" in the schema files.
func schemaPatterns(t *testing.T) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch n := v.(type) {
		case map[string]any:
			for k, c := range n {
				if s, ok := c.(string); ok && k == "pattern" {
					out = append(out, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range n {
				walk(c)
			}
		}
	}
	names, err := fs.Glob(schemas.FS, "*.schema.json")
	require.NoError(t, err)
	for _, name := range names {
		b, err := fs.ReadFile(schemas.FS, name)
		require.NoError(t, err)
		var doc any
		require.NoError(t, json.Unmarshal(b, &doc))
		walk(doc)
	}
	require.NotEmpty(t, out)
	return out
}

// The services take every format they check by hand from the schemas
// (MustPattern, KeywordString): a pattern written again in Go code is a
// copy that can drift from its contract.
func TestNoGoCodeCopiesASchemaPattern(t *testing.T) {
	patterns := schemaPatterns(t)
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, p := range patterns {
			// As a Go raw or interpreted string literal.
			for _, lit := range []string{"`" + p + "`", `"` + strings.ReplaceAll(p, `\`, `\\`) + `"`} {
				if strings.Contains(string(b), lit) {
					t.Errorf("%s copies the schema pattern %s: take it with contracts.MustPattern", path, p)
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
}
