// Command hello stands in for sluice-controller in the image's unit
// tests: a small static program whose version is stamped the same way.
package main

import (
	"fmt"
	"os"
)

var version, revision string

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Printf("hello %s (revision %s)\n", version, revision)
		return
	}
	fmt.Println("hello")
}
