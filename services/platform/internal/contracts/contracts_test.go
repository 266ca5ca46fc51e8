package contracts

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const examplesDir = "../../../../schemas/examples"

// TestExamples validates every schemas/examples/<schema>/{valid,invalid}-*.json
// with the Go validator: valid ones pass, invalid ones fail.
func TestExamples(t *testing.T) {
	v, err := New(nil)
	require.NoError(t, err)
	dirs, err := os.ReadDir(examplesDir)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		schema := d.Name() + ".schema.json"
		seen[schema] = true
		files, err := filepath.Glob(filepath.Join(examplesDir, d.Name(), "*.json"))
		require.NoError(t, err)
		require.NotEmpty(t, files, "no examples for %s", schema)
		for _, f := range files {
			base := filepath.Base(f)
			t.Run(d.Name()+"/"+base, func(t *testing.T) {
				b, err := os.ReadFile(f)
				require.NoError(t, err)
				err = v.Validate(schema, b)
				switch {
				case strings.HasPrefix(base, "valid-"):
					assert.NoError(t, err)
				case strings.HasPrefix(base, "invalid-"):
					assert.Error(t, err)
				default:
					t.Fatalf("example %s must start with valid- or invalid-", f)
				}
			})
		}
	}
	for _, n := range v.Names() {
		assert.True(t, seen[n], "schema %s has no examples directory", n)
	}
}

// TestEmbeddedEqualsFiles proves the embedded copies are the repository files.
func TestEmbeddedEqualsFiles(t *testing.T) {
	v := Default()
	for _, n := range v.Names() {
		_, err := os.Stat(filepath.Join("../../../../schemas", n))
		assert.NoError(t, err, n)
	}
}

func TestViolationsNameTheItem(t *testing.T) {
	body := `{"readings":[{"event_id":"0b7c1e2a-4d3f-4a5b-9c6d-7e8f9a0b1c2d","device_id":"d1","ts":"2026-01-01T00:00:00Z","metrics":{"t":1}},
	{"event_id":"x","device_id":"d1","ts":"2026-01-01T00:00:00Z","metrics":{"t":"a"}}]}`
	err := Default().Validate(TelemetryBatch, []byte(body))
	var ie *InvalidError
	require.ErrorAs(t, err, &ie)
	var ptrs []string
	for _, vi := range ie.Violations {
		ptrs = append(ptrs, vi.Pointer)
	}
	assert.Contains(t, ptrs, "/readings/1/event_id")
	assert.Contains(t, ptrs, "/readings/1/metrics/t")
}

func TestMalformed(t *testing.T) {
	var me *MalformedError
	require.ErrorAs(t, Default().Validate(TelemetryBatch, []byte(`{"readings":[`)), &me)
}

// TestOpenAPIRefsResolve checks that every schema file the three OpenAPI
// documents of the monolith reference exists and compiles here.
func TestOpenAPIRefsResolve(t *testing.T) {
	v := Default()
	known := map[string]bool{}
	for _, n := range v.Names() {
		known[n] = true
	}
	re := regexp.MustCompile(`\$ref:\s*"?\.\./([A-Za-z0-9_.-]+\.schema\.json)`)
	for _, doc := range []string{"ingestion.yaml", "query.yaml", "actions.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../../../schemas/openapi", doc))
		require.NoError(t, err)
		refs := re.FindAllStringSubmatch(string(b), -1)
		require.NotEmpty(t, refs, doc)
		for _, m := range refs {
			assert.True(t, known[m[1]], "%s references %s, which is not a compiled schema", doc, m[1])
		}
	}
}
