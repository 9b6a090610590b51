package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 document of the API, written by hand from the handlers; a test
// checks it names every route the server registers and no other.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI is the API's OpenAPI 3.1 document (JSON).
func OpenAPI() []byte { return openAPIDoc }

// handleOpenAPI serves the document, unauthenticated: it says nothing a caller could not try.
func handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(openAPIDoc)
}
