package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// missingHeader is what bench/cmd/server sets on an answer whose session
// was not found (its MissingHeader).
const missingHeader = "X-Session-Missing"

// client is one browser: a cookie jar, one session, the counter it wrote
// last.
type client struct {
	c  *http.Client
	n  int    // the counter the session should hold
	id string // the session's ID (from /where)
	// firstErr is the first error a request of the load met.
	firstErr string
}

// get GETs url and returns the counter answered, or errMissing, a
// *statusError or a transport error.
func (cl *client) get(url string) (int, error) {
	resp, err := cl.c.Get(url)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.Header.Get(missingHeader) != "" {
		return 0, errMissing
	}
	if resp.StatusCode/100 != 2 {
		return 0, &statusError{code: resp.StatusCode, body: fmt.Sprintf("%.80s", body)}
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		return 0, fmt.Errorf("answer %.40q is not a counter", body)
	}
	return v, nil
}

// errMissing is a node's answer that the client's session does not exist.
var errMissing = errors.New("the session was not found")

// statusError is an answer other than 2xx (and other than errMissing).
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

func (cl *client) init(base string) error {
	v, err := cl.get(base + "/init")
	if err != nil {
		return err
	}
	if v != 0 {
		return errors.New("/init did not answer 0")
	}
	cl.n = 0
	return nil
}

// where asks base for the client's session ID and holders (/where), and
// keeps the ID.
func (cl *client) where(base string) ([]string, error) {
	resp, err := cl.c.Get(base + "/where")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.Header.Get(missingHeader) != "" {
		return nil, fmt.Errorf("/where: %w", errMissing)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return nil, &statusError{code: resp.StatusCode, body: string(body)}
	}
	var w struct {
		ID      string   `json:"id"`
		Holders []string `json:"holders"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&w); err != nil {
		return nil, fmt.Errorf("/where: %w", err)
	}
	cl.id = w.ID
	return w.Holders, nil
}

// classify maps a request's error to its result.
func classify(err error) int8 {
	var se *statusError
	switch {
	case err == nil:
		return resOK
	case errors.Is(err, errMissing):
		return resMissing
	case errors.As(err, &se) && se.code/100 == 5:
		return res5xx
	}
	return resError
}

// rw reads the counter and increments it; a counter other than the one
// this client wrote last is a lost write, after which the client goes on
// from what the server holds.
func (cl *client) rw(base string) int8 {
	v, err := cl.get(base + "/rw")
	if err != nil {
		if cl.firstErr == "" {
			cl.firstErr = err.Error()
		}
		return classify(err)
	}
	want := cl.n
	cl.n = v + 1
	if v != want {
		return resMismatch
	}
	return resOK
}

// check reads the counter without changing it (after the load), retrying
// answers other than "not found" a few times; it returns the result
// (resMissing: the session is lost) and whether the counter is the one the
// client wrote last.
func (cl *client) check(base string) (res int8, current bool) {
	for range 5 {
		v, err := cl.get(base + "/ro")
		if err == nil {
			return resOK, v == cl.n
		}
		if res = classify(err); res == resMissing {
			return res, false
		}
	}
	return res, false
}
