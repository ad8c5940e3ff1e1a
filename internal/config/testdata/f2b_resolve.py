"""Print what the installed fail2ban resolves, as JSON, for logjail's compatibility tests.

    python3 f2b_resolve.py filters BASEDIR REF[@BACKEND]...
    python3 f2b_resolve.py jails BASEDIR
    python3 f2b_resolve.py jails-noactions BASEDIR   (action.d files are not read)

It only calls fail2ban's own readers (client/filterreader.py, client/jailsreader.py) and
reports their results; it contains no fail2ban code.
"""
import json
import sys

from fail2ban.client import jailreader
from fail2ban.client.filterreader import FilterReader
from fail2ban.client.jailsreader import JailsReader
from fail2ban.helpers import extractOptions, splitWithOptions

KEYS = ('prefregex', 'failregex', 'ignoreregex', 'datepattern', 'maxlines', 'journalmatch', 'usedns')


def filters(basedir, refs):
    out = {}
    for arg in refs:
        ref, _, backend = arg.partition('@')
        name, opts = extractOptions(ref)
        res = {}
        try:
            r = FilterReader(name, 'jail', opts, share_config={}, basedir=basedir)
            if not r.read():
                res['error'] = 'cannot read filter'
            else:
                r.applyAutoOptions(backend or 'auto')
                r.getOptions(None)
                combined = r.getCombined()
                for k in KEYS:
                    if combined.get(k) is not None:
                        res[k] = str(combined[k])
        except Exception as e:  # reported, compared by the test
            res['error'] = '%s: %s' % (type(e).__name__, e)
        out[arg] = res
    return out


def jails(basedir):
    r = JailsReader(force_enable=True, basedir=basedir, share_config={})
    r.read()
    r.getOptions()
    out = {}
    for j in r.jails:
        o = j.options
        res = {k: str(v) for k, v in o.items() if v is not None and k != 'config-error'}
        if o.get('config-error'):
            res['error'] = o['config-error']
        flt = j._JailReader__filter
        if flt is not None:
            combined = flt.getCombined()
            # The jail's own filter keys replace the filter's (FilterReader._fillStream).
            res['resolved'] = {k: str(o[k] if k in o and o[k] is not None else combined[k])
                               for k in KEYS if (k in o and o[k] is not None) or combined.get(k) is not None}
        acts = []
        for a in splitWithOptions(o.get('action', '')):
            a = a.strip()
            if a:
                name, opts = extractOptions(a)
                acts.append([name, opts])
        res['actions'] = acts
        out[j.getName()] = res
    return out


class NoActionReader(object):
    """Stands in for fail2ban's ActionReader where a test directory has no action.d."""

    def __init__(self, *args, **kwargs):
        pass

    def read(self):
        return True

    def getOptions(self, *args, **kwargs):
        pass


def main():
    mode, basedir = sys.argv[1], sys.argv[2]
    if mode == 'filters':
        res = filters(basedir, sys.argv[3:])
    elif mode == 'jails':
        res = jails(basedir)
    elif mode == 'jails-noactions':
        jailreader.ActionReader = NoActionReader
        res = jails(basedir)
    else:
        raise SystemExit('unknown mode %r' % mode)
    json.dump(res, sys.stdout, indent=1, sort_keys=True)


if __name__ == '__main__':
    main()
