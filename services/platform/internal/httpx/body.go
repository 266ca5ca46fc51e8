package httpx

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// ReadJSONBody reads a request body of at most limit bytes sent as JSON (no
// Content-Type, application/json or any +json type). On a problem it writes
// the error answer (415, 413 or 400) and returns false.
func ReadJSONBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			WriteError(w, http.StatusUnsupportedMediaType, CodeUnsupportedType, "Content-Type must be application/json")
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("body exceeds %d bytes", limit))
			return nil, false
		}
		WriteError(w, http.StatusBadRequest, CodeMalformedJSON, "cannot read body: "+err.Error())
		return nil, false
	}
	return body, true
}
