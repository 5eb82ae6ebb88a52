// composecheck loads a Compose file the way `docker compose` does (with compose-go,
// the loader the Docker Compose CLI itself is built on): schema validation,
// interpolation from --env-file, profiles from COMPOSE_PROFILES, normalisation and
// consistency checks. It prints the normalised project as JSON (like `docker compose
// config --format json`) on success, and the loader's error with exit status 1
// otherwise. Used by tests/deploy.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	file := flag.String("f", "docker-compose.yml", "compose file")
	envFile := flag.String("env-file", "", "env file for interpolation (like docker compose --env-file)")
	name := flag.String("p", "", "project name (default: from the file or its directory)")
	flag.Parse()

	fns := []cli.ProjectOptionsFn{cli.WithOsEnv, cli.WithConsistency(true), cli.WithNormalization(true)}
	if *envFile != "" {
		fns = append(fns, cli.WithEnvFiles(*envFile))
	}
	// Profiles from COMPOSE_PROFILES, as `docker compose` takes them.
	fns = append(fns, cli.WithDotEnv, cli.WithDefaultProfiles())
	if *name != "" {
		fns = append(fns, cli.WithName(*name))
	}
	opts, err := cli.NewProjectOptions([]string{*file}, fns...)
	if err == nil {
		var out []byte
		project, lerr := opts.LoadProject(context.Background())
		if err = lerr; err == nil {
			if out, err = project.MarshalJSON(); err == nil {
				fmt.Println(string(out))
				return
			}
		}
	}
	fmt.Fprintln(os.Stderr, "compose file invalid:", err)
	os.Exit(1)
}
