"""Sign-in flood against a running Tessera: N parallel POST /login with
distinct unknown usernames, while sampling the server's resident memory.

Usage: python3 bench/signin_flood.py BASE_URL PUBLIC_CLIENT_ID SERVER_PID N
(the client must be registered with redirect URI https://rp.example.com/cb
and scope openid). Prints the answers by status and RSS before, at peak and
two seconds after."""
import re, sys, threading, time, urllib.request, urllib.parse, http.cookiejar

base, client_id, pid, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
peak = [rss()]; stop = [False]
def sampler():
    while not stop[0]:
        peak[0] = max(peak[0], rss()); time.sleep(0.02)
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
def page():
    jar = http.cookiejar.CookieJar()
    op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    q = urllib.parse.urlencode({"response_type": "code", "client_id": client_id,
        "redirect_uri": "https://rp.example.com/cb", "scope": "openid", "state": "s", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"})
    body = op.open(f"{base}/authorize?{q}").read().decode()
    action = re.search(r'<form[^>]*action="([^"]+)"', body).group(1).replace("&amp;", "&")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
    return op, action, csrf
pages = [page() for _ in range(n)]
before = rss()
threading.Thread(target=sampler, daemon=True).start()
codes = {}
def post(i):
    op, action, csrf = pages[i]
    data = urllib.parse.urlencode({"csrf_token": csrf, "username": f"stranger{i}", "password": "guess"}).encode()
    try:
        code = op.open(base + action, data).status
    except urllib.error.HTTPError as e:
        code = e.code
    codes[code] = codes.get(code, 0) + 1
t0 = time.time()
threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
[t.start() for t in threads]; [t.join() for t in threads]
elapsed = time.time() - t0
time.sleep(2); stop[0] = True
print(f"requests={n} answers={codes} elapsed={elapsed:.1f}s rss_before={before}MiB rss_peak={peak[0]}MiB rss_after_2s={rss()}MiB")
