package main

import (
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/houssem/cmbs/config"
)

// composeFile is the part of a Compose file the example uses.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Networks map[string]any            `yaml:"networks"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command   []string                     `yaml:"command"`
	Hostname  string                       `yaml:"hostname"`
	Networks  []string                     `yaml:"networks"`
	Volumes   []string                     `yaml:"volumes"`
	Ports     []string                     `yaml:"ports"`
	DependsOn map[string]map[string]string `yaml:"depends_on"`
	Restart   string                       `yaml:"restart"`
}

// TestComposeExample checks the shape of examples/compose/docker-compose.yml
// as far as can be done without a Docker engine: every service builds the
// project's Dockerfile and serves the config file it mounts, which
// cmbs config check accepts; each member binds 0.0.0.0 and advertises its
// own service name, on the ports the image exposes; neighbours and
// dependencies name services of the file; networks and volumes used are
// declared; published ports do not collide.
func TestComposeExample(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "compose")
	raw, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(cf.Services) != 3 {
		t.Fatalf("services %v, want three members", slices.Sorted(maps.Keys(cf.Services)))
	}
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	for _, line := range strings.Split(string(dockerfile), "\n") {
		if rest, ok := strings.CutPrefix(line, "EXPOSE "); ok {
			for _, p := range strings.Fields(rest) {
				exposed[p] = true
			}
		}
	}

	published := map[string]string{}
	for name, svc := range cf.Services {
		t.Run(name, func(t *testing.T) {
			ctx := filepath.Join(dir, svc.Build.Context)
			if _, err := os.Stat(filepath.Join(ctx, svc.Build.Dockerfile)); err != nil || svc.Build.Dockerfile != "Dockerfile" {
				t.Errorf("builds %s/%s: want the project's Dockerfile (%v)", svc.Build.Context, svc.Build.Dockerfile, err)
			}
			if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
				t.Errorf("build context %s is not the repository's root: %v", svc.Build.Context, err)
			}
			if svc.Hostname != name {
				t.Errorf("hostname %q, want the service name", svc.Hostname)
			}
			for _, n := range svc.Networks {
				if _, ok := cf.Networks[n]; !ok {
					t.Errorf("network %s is not declared", n)
				}
			}
			for dep := range svc.DependsOn {
				if _, ok := cf.Services[dep]; !ok {
					t.Errorf("depends on %s, which is no service", dep)
				}
			}
			for _, p := range svc.Ports {
				parts := strings.Split(p, ":")
				if len(parts) != 3 || net.ParseIP(parts[0]) == nil || !net.ParseIP(parts[0]).IsLoopback() {
					t.Errorf("port %q: want HOST_IP:PORT:8090 on loopback (authentication is off)", p)
					continue
				}
				if other, dup := published[parts[1]]; dup {
					t.Errorf("port %s also published by %s", parts[1], other)
				}
				published[parts[1]] = name
			}
			if !slices.Equal(svc.Command[:1], []string{"serve"}) || !slices.Contains(svc.Command, "--config") {
				t.Fatalf("command %v: want serve --config FILE", svc.Command)
			}
			cfgPath := svc.Command[slices.Index(svc.Command, "--config")+1]
			var hostFile string
			for _, v := range svc.Volumes {
				parts := strings.Split(v, ":")
				if len(parts) >= 2 && parts[1] == cfgPath {
					hostFile = filepath.Join(dir, parts[0])
				} else if len(parts) >= 2 {
					if _, ok := cf.Volumes[parts[0]]; !ok {
						t.Errorf("volume %s is not declared", parts[0])
					}
				}
			}
			if hostFile == "" {
				t.Fatalf("no volume mounts %s", cfgPath)
			}
			if err := config.CheckFile(hostFile); err != nil {
				t.Fatalf("cmbs config check %s: %v", hostFile, err)
			}
			c, err := config.Load(hostFile)
			if err != nil {
				t.Fatal(err)
			}
			if c.BindHost != "0.0.0.0" || c.Member == nil {
				t.Fatalf("%s: bind_host %q, member %v: want 0.0.0.0 and a member", hostFile, c.BindHost, c.Member)
			}
			if len(c.Member.Start) != len(config.MemberLayers()) || !c.Member.Discover {
				t.Errorf("%s: starts %v, discover %v: want every layer and discovery", hostFile, c.Member.Start, c.Member.Discover)
			}
			for l, ep := range c.Member.Sockets {
				u, err := url.Parse(ep)
				if err != nil || u.Scheme != "tcp" || u.Hostname() != name || !exposed[u.Port()] {
					t.Errorf("%s socket %s: want tcp://%s:PORT with a port the image exposes", l, ep, name)
				}
			}
			for _, n := range c.Member.Neighbors {
				u, err := url.Parse(n)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := cf.Services[u.Hostname()]; !ok || u.Hostname() == name {
					t.Errorf("neighbour %s is not another service of the file", n)
				}
				if _, ok := svc.DependsOn[u.Hostname()]; !ok {
					t.Errorf("neighbour %s: the service does not wait for %s", n, u.Hostname())
				}
			}
		})
	}
}
