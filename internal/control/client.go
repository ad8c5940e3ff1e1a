package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// DefaultTimeout bounds one request of a Client, reply included: a reload may take a while.
const DefaultTimeout = 30 * time.Second

// maxReply bounds the reply a Client reads (a banned list with its log lines can be long).
const maxReply = 256 << 20

// Client talks to the daemon on its control socket. It has one method per Service method (it
// implements Service) and is safe for concurrent use.
//
// Errors: no daemon on the socket (no file, nobody listening) is an error matching
// ErrNotRunning whose text is one sentence, "logjail is not running (no daemon on SOCKET)";
// a socket the caller may not open matches fs.ErrPermission ("permission denied on SOCKET: run
// as root or as a member of its group"); an error reply of the daemon is a *ServerError, which
// matches ErrBadRequest or ErrNotFound and carries the daemon's message.
type Client struct {
	socket string
	hc     *http.Client
	ctx    context.Context
}

var _ Service = (*Client)(nil)

// NewClient returns a client of the daemon listening on socket ("" is DefaultSocket). Each
// request times out after DefaultTimeout.
func NewClient(socket string) *Client {
	if socket == "" {
		socket = DefaultSocket
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
		MaxIdleConns:       2,
		IdleConnTimeout:    10 * time.Second,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr, Timeout: DefaultTimeout}, ctx: context.Background()}
}

// WithContext returns a copy of c whose requests are also cancelled with ctx (the CLI passes
// its signal context, so that ^C ends a long reload at once).
func (c *Client) WithContext(ctx context.Context) *Client {
	c2 := *c
	c2.ctx = ctx
	return &c2
}

// Socket is the path c talks to.
func (c *Client) Socket() string { return c.socket }

// Status asks for the state of every jail, or of the one named.
func (c *Client) Status(jail string) (*StatusReply, error) {
	var rep StatusReply
	return replyOf(&rep, c.do(http.MethodGet, pathStatus, jailQuery(jail), nil, &rep))
}

// Banned lists the bans in force, in every jail or in the one named.
func (c *Client) Banned(jail string) (*BannedReply, error) {
	var rep BannedReply
	return replyOf(&rep, c.do(http.MethodGet, pathBanned, jailQuery(jail), nil, &rep))
}

// Ban bans req.Target in req.Jail.
func (c *Client) Ban(req BanRequest) (*BanReply, error) {
	var rep BanReply
	return replyOf(&rep, c.do(http.MethodPost, pathBan, nil, req, &rep))
}

// Unban lifts bans.
func (c *Client) Unban(req UnbanRequest) (*UnbanReply, error) {
	var rep UnbanReply
	return replyOf(&rep, c.do(http.MethodPost, pathUnban, nil, req, &rep))
}

// Explain asks every jail what it knows about addr.
func (c *Client) Explain(addr string) (*ExplainReply, error) {
	var rep ExplainReply
	return replyOf(&rep, c.do(http.MethodGet, pathExplain, url.Values{"addr": {addr}}, nil, &rep))
}

// Reload has the daemon read its configuration again, for every jail or the one named.
func (c *Client) Reload(jail string) (*ReloadReply, error) {
	var rep ReloadReply
	return replyOf(&rep, c.do(http.MethodPost, pathReload, jailQuery(jail), nil, &rep))
}

// Stop asks the daemon to stop. It returns once the daemon has accepted; see WaitStopped.
func (c *Client) Stop() error {
	var rep struct{}
	return c.do(http.MethodPost, pathStop, nil, nil, &rep)
}

// WaitStopped waits until nothing answers on the socket any more, for at most timeout.
func (c *Client) WaitStopped(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", c.socket)
		if err != nil {
			if notRunning(err) {
				return nil
			}
			if ctx.Err() == nil {
				return c.transportError(err)
			}
		} else {
			conn.Close()
		}
		select {
		case <-ctx.Done():
			if c.ctx.Err() != nil {
				return c.ctx.Err()
			}
			return fmt.Errorf("logjail still answers on %s after %s", c.socket, timeout)
		case <-tick.C:
		}
	}
}

func replyOf[T any](rep *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func jailQuery(jail string) url.Values {
	if jail == "" {
		return nil
	}
	return url.Values{"jail": {jail}}
}

// do sends one request and decodes the reply into out.
func (c *Client) do(method, path string, query url.Values, in, out any) error {
	u := "http://logjail" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("request %s: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return fmt.Errorf("read the reply of logjail on %s: %w", c.socket, err)
	}
	if len(data) > maxReply {
		return fmt.Errorf("the reply of logjail on %s is over %d bytes", c.socket, maxReply)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorReply
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			return &ServerError{Status: resp.StatusCode,
				Message: fmt.Sprintf("unexpected reply from %s: %s (is it logjail?)", c.socket, resp.Status)}
		}
		return &ServerError{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("unexpected reply from %s (is it logjail?): %w", c.socket, err)
	}
	return nil
}

// notRunning tells whether a dial error means that no daemon listens: no socket file (or no
// directory), a file nobody listens on, or a file that is no socket.
func notRunning(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTDIR)
}

// transportError turns a failed round trip into one sentence for the user.
func (c *Client) transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case notRunning(err):
		return &clientError{msg: fmt.Sprintf("logjail is not running (no daemon on %s)", c.socket), err: ErrNotRunning}
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return &clientError{msg: fmt.Sprintf("permission denied on %s: run as root or as a member of its group", c.socket), err: fs.ErrPermission}
	case c.ctx.Err() != nil:
		return fmt.Errorf("request to logjail on %s: %w", c.socket, c.ctx.Err())
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("logjail on %s did not answer within %s: %w", c.socket, c.hc.Timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("request to logjail on %s: %w", c.socket, err)
}
