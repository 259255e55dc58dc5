package replicate

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
)

// credentials hands out one aws.Config per destination: the session itself in its own account, else the
// destination's role, federated with the same identity (Session.Role) or, when that role's trust policy
// does not admit the token, chained from the ci role (Session.Chain). Each role is assumed once.
type credentials struct {
	sess *federate.Session
	mu   sync.Mutex
	ch   map[string]*roleCfg
}

type roleCfg struct {
	once sync.Once
	cfg  aws.Config
	err  error
}

func newCredentials(sess *federate.Session) *credentials {
	return &credentials{sess: sess, ch: map[string]*roleCfg{}}
}

// CanCopy reports whether credentials for d can be had: its own role, or the ci account itself.
func CanCopy(d Destination, ciAccount string) bool {
	return d.RoleARN != "" || d.Account == ciAccount
}

func (c *credentials) forDest(ctx context.Context, d Destination) (aws.Config, error) {
	var cfg aws.Config
	switch {
	case d.RoleARN != "":
		c.mu.Lock()
		rc, ok := c.ch[d.RoleARN]
		if !ok {
			rc = &roleCfg{}
			c.ch[d.RoleARN] = rc
		}
		c.mu.Unlock()
		rc.once.Do(func() { rc.cfg, rc.err = c.assume(ctx, d.RoleARN) })
		if rc.err != nil {
			return aws.Config{}, rc.err
		}
		cfg = rc.cfg.Copy()
	case d.Account == c.sess.Account:
		cfg = c.sess.Config.Copy()
	default:
		return aws.Config{}, fixable.New("no credentials for destination %s: pass --destination-role-name ROLE (a role in %s this job may assume) or %s=arn:aws:iam::%s:role/ROLE",
			d, d.Account, d, d.Account)
	}
	cfg.Region = d.Region
	return cfg, nil
}

func (c *credentials) assume(ctx context.Context, roleARN string) (aws.Config, error) {
	cfg, err := c.sess.Role(ctx, roleARN)
	if err == nil {
		return cfg, nil
	}
	cfg, cerr := c.sess.Chain(ctx, roleARN)
	if cerr == nil {
		return cfg, nil
	}
	msg := fmt.Sprintf("no credentials for %s: federating the CI identity into it failed (%v), and so did role chaining from %s (%v)", roleARN, err, c.sess.RoleARN, cerr)
	if fixable.Is(err) || fixable.Is(cerr) {
		return aws.Config{}, fixable.Wrap(err, msg)
	}
	return aws.Config{}, fmt.Errorf("%s: %w", msg, err)
}

// DestinationConfig is the AWS configuration copy mode writes to d with (d's role, federated or
// chained; the session itself in its own account), for a plan that checks every destination's
// credentials before anything is written.
func DestinationConfig(ctx context.Context, sess *federate.Session, d Destination) (aws.Config, error) {
	return newCredentials(sess).forDest(ctx, d)
}
