// Package e2e holds end-to-end tests that drive peersession's demo
// (examples/twonode) in a real browser. It is a module of its own so that
// the browser driver stays out of the library's dependencies:
//
//	cd e2e && go test -race ./...
//
// The tests need Debian's chromium package (apt-get install chromium);
// without it they fail and say so.
package e2e
