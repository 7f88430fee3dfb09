//go:build !unix

package persist

import "os"

// lockDir opens path; without flock, nothing stops a second store on the
// same directory.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
