package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// client is one browser: a cookie jar, one session, the counter it wrote
// last.
type client struct {
	c *http.Client
	n int // the counter the session should hold
}

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
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("HTTP %d: %.80s", resp.StatusCode, body)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		return 0, fmt.Errorf("answer %.40q is not a counter", body)
	}
	return v, nil
}

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

// rw reads the counter and increments it; a counter other than the one
// this client wrote last is a lost write, after which the client goes on
// from what the server holds.
func (cl *client) rw(base string) int {
	v, err := cl.get(base + "/rw")
	if err != nil {
		return resError
	}
	want := cl.n
	cl.n = v + 1
	if v != want {
		return resMismatch
	}
	return resOK
}
