package contracts

import (
	"encoding/json"
	"runtime"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// arraySplit describes a schema of the form {"type":"object", ...,
// "properties": {prop: {"type":"array", "minItems":…, "maxItems": max,
// "items": {"$ref": item}}}}: a document is valid iff it is valid with
// prop cut to its first item (the object-level keywords; minItems ≥ 1 is
// then met by any non-empty array), len(prop) ≤ max, and every item is
// valid against item. Those checks can run item by item in parallel.
type arraySplit struct {
	prop     string
	maxItems int
	item     string
}

// parallelMin is the array length from which items are validated on
// several goroutines (below it the goroutines cost more than they save).
const parallelMin = 64

// splittable reports whether a schema file has exactly the arraySplit shape:
// only plain object keywords at the top, and one array property whose keywords are only type, minItems (≥ 1), maxItems
// and items = {"$ref": "<file>"} with a same-directory file name. Anything
// else (another keyword, a $ref with a fragment, …) keeps the plain path.
func splittable(schema []byte) (arraySplit, bool) {
	var kwsTop map[string]json.RawMessage
	if json.Unmarshal(schema, &kwsTop) != nil {
		return arraySplit{}, false
	}
	for k := range kwsTop {
		switch k {
		case "$schema", "$id", "title", "description", "type", "additionalProperties", "required", "properties":
		default: // a keyword that could look into the array (allOf, if, unevaluated…)
			return arraySplit{}, false
		}
	}
	var top struct {
		Type       string                                `json:"type"`
		Properties map[string]map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(schema, &top) != nil || top.Type != "object" {
		return arraySplit{}, false
	}
	var found arraySplit
	for name, kws := range top.Properties {
		var typ string
		if json.Unmarshal(kws["type"], &typ) != nil || typ != "array" {
			continue
		}
		if found.prop != "" {
			return arraySplit{}, false // two arrays: keep it simple
		}
		var minItems, maxItems int
		var items map[string]string
		for k, raw := range kws {
			switch k {
			case "type", "description", "title":
			case "minItems":
				if json.Unmarshal(raw, &minItems) != nil {
					return arraySplit{}, false
				}
			case "maxItems":
				if json.Unmarshal(raw, &maxItems) != nil {
					return arraySplit{}, false
				}
			case "items":
				if json.Unmarshal(raw, &items) != nil {
					return arraySplit{}, false
				}
			default:
				return arraySplit{}, false
			}
		}
		ref := items["$ref"]
		if minItems < 1 || maxItems < 1 || len(items) != 1 || ref == "" || strings.ContainsAny(ref, "#/:") {
			return arraySplit{}, false
		}
		found = arraySplit{prop: name, maxItems: maxItems, item: ref}
	}
	return found, found.prop != ""
}

// validParallel reports true only if inst is valid against s (see
// arraySplit), checking the array's items on up to GOMAXPROCS goroutines.
// False means "invalid or not checked this way": the caller then runs the
// plain validation, which also builds the violations, so errors are the
// same on both paths.
func (v *Validator) validParallel(name string, s *jsonschema.Schema, inst any) bool {
	a, ok := v.arrays[name]
	if !ok {
		return false
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		return false
	}
	arr, ok := obj[a.prop].([]any)
	workers := runtime.GOMAXPROCS(0)
	if !ok || len(arr) < parallelMin || len(arr) > a.maxItems || workers < 2 {
		return false
	}
	head := make(map[string]any, len(obj))
	for k, val := range obj {
		head[k] = val
	}
	head[a.prop] = arr[:1]
	item := v.schemas[a.item]
	rest := arr[1:]
	chunk := (len(rest) + workers - 1) / workers
	var bad sync.Once
	failed := false
	var wg sync.WaitGroup
	for lo := chunk; lo < len(rest); lo += chunk {
		part := rest[lo:min(lo+chunk, len(rest))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, it := range part {
				if item.Validate(it) != nil {
					bad.Do(func() { failed = true })
					return
				}
			}
		}()
	}
	ok = s.Validate(head) == nil
	if ok {
		for _, it := range rest[:min(chunk, len(rest))] {
			if item.Validate(it) != nil {
				ok = false
				break
			}
		}
	}
	wg.Wait()
	return ok && !failed
}
