package iptables

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// update rewrites testdata/*.golden. Each test binary has its own flags, so
// this package defines its own (go test ./internal/action/... -update).
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const testServices = `# services(5) for tests
ssh		22/tcp				# SSH Remote Login Protocol
http		80/tcp		www		# WorldWideWeb HTTP
https		443/tcp
https		443/udp
syslog		514/udp
shell		514/tcp		cmd
`

func writeServices(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "services")
	if err := os.WriteFile(p, []byte(testServices), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompile(t *testing.T) {
	services := writeServices(t)
	tests := []struct {
		name     string
		opts     Options
		wantJump string // of a valid config
		wantErr  string // substring of the error
	}{
		{name: "defaults", opts: Options{Jail: "sshd"}, wantJump: "-p tcp -j lj-sshd"},
		{name: "one port", opts: Options{Jail: "sshd", Ports: "22"}, wantJump: "-p tcp -m multiport --dports 22 -j lj-sshd"},
		{name: "names and range", opts: Options{Jail: "web", Ports: "http, https,8000:8100"}, wantJump: "-p tcp -m multiport --dports 80,443,8000:8100 -j lj-web"},
		{name: "alias", opts: Options{Jail: "web", Ports: "www"}, wantJump: "-p tcp -m multiport --dports 80 -j lj-web"},
		{name: "udp name", opts: Options{Jail: "log", Ports: "syslog", Protocol: "UDP"}, wantJump: "-p udp -m multiport --dports 514 -j lj-log"},
		{name: "name of the other protocol", opts: Options{Jail: "log", Ports: "syslog"}, wantErr: `unknown service "syslog" for tcp`},
		{name: "builtin table", opts: Options{Jail: "db", Ports: "mysql,postgresql"}, wantJump: "-p tcp -m multiport --dports 3306,5432 -j lj-db"},
		{name: "all ports range", opts: Options{Jail: "x", Ports: "0:65535"}, wantJump: "-p tcp -m multiport --dports 0:65535 -j lj-x"},
		{name: "range of names", opts: Options{Jail: "x", Ports: "ssh:http"}, wantJump: "-p tcp -m multiport --dports 22:80 -j lj-x"},
		{name: "all protocols", opts: Options{Jail: "x", Protocol: AllProtocols}, wantJump: "-j lj-x"},
		{name: "udp no ports", opts: Options{Jail: "x", Protocol: UDP}, wantJump: "-p udp -j lj-x"},
		{name: "15 ports", opts: Options{Jail: "x", Ports: "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15"}, wantJump: "-p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -j lj-x"},
		{name: "docker", opts: Options{Jail: "x", Chain: "DOCKER-USER"}, wantJump: "-p tcp -j lj-x"},
		{name: "longest jail", opts: Options{Jail: strings.Repeat("j", 25)}, wantJump: "-p tcp -j lj-" + strings.Repeat("j", 25)},

		{name: "jail too long", opts: Options{Jail: strings.Repeat("j", 26)}, wantErr: "longer than 25"},
		{name: "empty jail", opts: Options{}, wantErr: "invalid jail name"},
		{name: "jail with dot", opts: Options{Jail: "a.b"}, wantErr: "invalid jail name"},
		{name: "jail with space", opts: Options{Jail: "a b"}, wantErr: "invalid jail name"},
		{name: "16 ports", opts: Options{Jail: "x", Ports: "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"}, wantErr: "more than 15"},
		{name: "8 ranges", opts: Options{Jail: "x", Ports: "1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16"}, wantErr: "more than 15"},
		{name: "backwards range", opts: Options{Jail: "x", Ports: "80:20"}, wantErr: "backwards"},
		{name: "port too big", opts: Options{Jail: "x", Ports: "70000"}, wantErr: "out of range"},
		{name: "negative port", opts: Options{Jail: "x", Ports: "-1"}, wantErr: "out of range"},
		{name: "unknown name", opts: Options{Jail: "x", Ports: "nosuchservice"}, wantErr: "unknown service"},
		{name: "empty item", opts: Options{Jail: "x", Ports: "22,,80"}, wantErr: "empty item"},
		{name: "ports with all", opts: Options{Jail: "x", Ports: "22", Protocol: AllProtocols}, wantErr: "need protocol tcp or udp"},
		{name: "bad protocol", opts: Options{Jail: "x", Protocol: "icmp"}, wantErr: "invalid protocol"},
		{name: "bad block type", opts: Options{Jail: "x", BlockType: "REJECT --reject-with tcp-reset"}, wantErr: "invalid block type"},
		{name: "our prefix as parent", opts: Options{Jail: "x", Chain: "lj-other"}, wantErr: "belong to logjail"},
		{name: "parent with space", opts: Options{Jail: "x", Chain: "A B"}, wantErr: "invalid chain"},
		{name: "parent option", opts: Options{Jail: "x", Chain: "-F"}, wantErr: "invalid chain"},
		{name: "parent too long", opts: Options{Jail: "x", Chain: strings.Repeat("C", 29)}, wantErr: "longer than 28"},
		{name: "negative timeout", opts: Options{Jail: "x", Timeout: -time.Second}, wantErr: "invalid lock timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.opts.compile(services)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("compile(%+v) error = %v, want one containing %q", tt.opts, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("compile(%+v): %v", tt.opts, err)
			}
			if diff := cmp.Diff(tt.wantJump, strings.Join(c.jump, " ")); diff != "" {
				t.Errorf("jump rule (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileDefaults(t *testing.T) {
	c, err := Options{Jail: "sshd", BlockType: "drop"}.compile(writeServices(t))
	if err != nil {
		t.Fatal(err)
	}
	want := config{jail: "sshd", chain: "lj-sshd", parent: "INPUT", jump: []string{"-p", "tcp", "-j", "lj-sshd"}, protocol: TCP, block: BlockDrop, lockWait: 5}
	if diff := cmp.Diff(want, c, cmp.AllowUnexported(config{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	for in, want := range map[time.Duration]int{time.Second: 1, 1500 * time.Millisecond: 2, time.Millisecond: 1, time.Minute: 60} {
		c, err := Options{Jail: "x", Timeout: in}.compile("")
		if err != nil || c.lockWait != want {
			t.Errorf("Timeout %v: lockWait %d, %v; want %d", in, c.lockWait, err, want)
		}
	}
}

// Without /etc/services (minimal containers) the built-in table answers.
func TestServicesFallback(t *testing.T) {
	c, err := Options{Jail: "x", Ports: "ssh,https,submission"}.compile(filepath.Join(t.TempDir(), "missing"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(c.jump, " "), "-p tcp -m multiport --dports 22,443,587 -j lj-x"; got != want {
		t.Errorf("jump = %q, want %q", got, want)
	}
}

func TestServicesParse(t *testing.T) {
	var s services
	s.ports = map[string]int{}
	s.parse(strings.NewReader(testServices + "broken\nbad 99999/tcp\nalso bad/tcp\n"))
	tests := []struct {
		name  string
		proto Protocol
		want  int
		ok    bool
	}{
		{"ssh", TCP, 22, true},
		{"www", TCP, 80, true},
		{"https", UDP, 443, true},
		{"syslog", UDP, 514, true},
		{"cmd", TCP, 514, true},
		{"bad", TCP, 0, false},
		{"also", TCP, 0, false},
	}
	for _, tt := range tests {
		got, ok := s.lookup(tt.name, tt.proto)
		if got != tt.want || ok != tt.ok {
			t.Errorf("lookup(%q, %s) = %d, %v; want %d, %v", tt.name, tt.proto, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCheckJailName(t *testing.T) {
	if err := CheckJailName("nginx-http_auth"); err != nil {
		t.Errorf("CheckJailName: %v", err)
	}
	if got := ChainName("sshd"); got != "lj-sshd" {
		t.Errorf("ChainName(sshd) = %q", got)
	}
	if len(ChainName(strings.Repeat("x", MaxJailName))) != maxChainName {
		t.Errorf("MaxJailName %d does not fill a %d-character chain name", MaxJailName, maxChainName)
	}
}
