package peersession

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each error the library returns maps to one HTTP status, wrapped or
// not; what a client caused is a 4xx.
func TestStatusCodeOfEachError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{ErrTooLarge, http.StatusRequestEntityTooLarge},
		{fmt.Errorf("%w: setting %q", ErrTooLarge, "k"), http.StatusRequestEntityTooLarge},
		{ErrInvalidToken, http.StatusBadRequest},
		{ErrNotFound, http.StatusNotFound},
		{ErrSessionEnded, http.StatusConflict},
		{ErrTooManySessions, http.StatusServiceUnavailable},
		{fmt.Errorf("peersession: %w", ErrNotReplicated), http.StatusServiceUnavailable},
		{ErrClosed, http.StatusServiceUnavailable},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		assert.Equal(t, tc.want, StatusCode(tc.err), "%v", tc.err)
	}
}

// A commit that fails is answered by the default ErrorFunc with the
// error's StatusCode: a session over its size limit is a 413, not a 500.
func TestDefaultErrorFuncAnswersTheStatusCode(t *testing.T) {
	st := newTestStore(t, Config{})
	for _, err := range []error{fmt.Errorf("%w: over Config.MaxSessionBytes", ErrTooLarge), ErrTooManySessions} {
		rec := httptest.NewRecorder()
		st.fail(rec, httptest.NewRequest("GET", "/", nil), err)
		assert.Equal(t, StatusCode(err), rec.Code, "%v", err)
	}
}

// FromContext outside the middleware panics with a message that says how
// to fix it, rather than returning nil for the next call to dereference.
func TestFromContextOutsideTheMiddlewareSaysWhatToDo(t *testing.T) {
	defer func() {
		r := recover()
		require.NotNil(t, r, "FromContext must panic outside the middleware")
		require.ErrorIs(t, r.(error), errNoSession)
		assert.Contains(t, r.(error).Error(), "Store.Middleware")
	}()
	FromContext(context.Background())
}
