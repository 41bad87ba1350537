import Crypto

/// The page a suspicious client gets instead of the site: it solves a `ProofOfWork` challenge
/// in JavaScript and posts the answer, with no click, to the shield's verify path, whose
/// redirect (with a `ClearanceCookie`) brings the browser back where it was going.
///
/// The page is self-contained — inline CSS and JavaScript, no external resource — so it works
/// whatever the site behind the shield serves, and says in `<noscript>` that JavaScript is
/// required.
///
/// ## The JavaScript
///
/// `crypto.subtle` exists only in secure contexts (HTTPS or localhost), and is asynchronous:
/// one promise per hash, far slower than hashing for inputs this small. So the page always
/// uses its own compact SHA-256 (`solverScript`), the same in every browser and on plain
/// HTTP; it hashes the challenge's whole 64-byte blocks once and allocates nothing per try
/// (1.3 million tries a second in node on the project's 2-core machine). It tries the solutions `"0"`, `"1"`, … as `ProofOfWork.solve` does, in slices of
/// 50 ms so that the page stays responsive, then fills the form and submits it: a normal form
/// GET (`challenge`, `solution`, `return_to` in the query string — the proxy answers it with no
/// request body to read), so the browser itself stores the cookie and follows the redirect.
///
/// ## Escaping
///
/// The script is the same for every page (`script`): the challenge, difficulty, verify path
/// and return path go only into HTML attributes, escaped there, and the script reads them from
/// the form. Nothing is ever interpolated into JavaScript, and the script and style can be
/// allowed by hash in a strict `contentSecurityPolicy`.
package enum ChallengePage {
    /// The page for one challenge.
    ///
    /// - Parameters:
    ///   - challenge: `ProofOfWork.Challenge.value`.
    ///   - difficulty: `ProofOfWork.Challenge.difficulty`.
    ///   - verifyPath: where the answer is posted, e.g. `/.fulcrum/verify`.
    ///   - returnTo: the path to come back to; pass it through `safeReturnPath(_:)` first
    ///     (and again when it comes back in the form).
    package static func html(challenge: String, difficulty: Int, verifyPath: String, returnTo: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="robots" content="noindex, nofollow">
        <meta name="referrer" content="no-referrer">
        <title>Checking your browser</title>
        <style>\(style)</style>
        </head>
        <body>
        <main>
        <h1>Checking your browser…</h1>
        <p id="fulcrum-status"></p>
        <noscript><p>JavaScript is required to pass this check. Please enable JavaScript for this site and reload the page.</p></noscript>
        <form id="fulcrum-form" method="get" action="\(escapeHTML(verifyPath))" data-difficulty="\(difficulty)">
        <input type="hidden" name="challenge" value="\(escapeHTML(challenge))">
        <input type="hidden" name="solution" value="">
        <input type="hidden" name="return_to" value="\(escapeHTML(returnTo))">
        </form>
        </main>
        <script>\(script)</script>
        </body>
        </html>

        """
    }

    /// `returnTo` if it is a path on this site, else `/`: never a scheme, a host (`//evil`,
    /// `/\evil`, which browsers read as `//evil`), whitespace or control characters, or more
    /// than 2,048 bytes. The verify path redirects to what the client posts back, so without
    /// this the shield would be an open redirect.
    package static func safeReturnPath(_ returnTo: String) -> String {
        let bytes = returnTo.utf8
        guard bytes.count <= 2048,
            bytes.first == UInt8(ascii: "/"),
            !returnTo.hasPrefix("//"), !returnTo.hasPrefix("/\\"),
            bytes.allSatisfy({ $0 > 0x20 && $0 != 0x7f && $0 != UInt8(ascii: "\\") })
        else { return "/" }
        return returnTo
    }

    /// A `Content-Security-Policy` for the page: nothing but its own inline script and style
    /// (allowed by hash), and forms only to this site.
    package static let contentSecurityPolicy =
        "default-src 'none'; script-src '\(hashSource(script))'; style-src '\(hashSource(style))'; "
        + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

    /// The page's whole script: `solverScript`, then the part that reads the form, solves in
    /// slices and submits.
    package static let script =
        solverScript + """
            (function () {
              var form = document.getElementById('fulcrum-form');
              var status = document.getElementById('fulcrum-status');
              if (status) status.textContent = 'This takes a moment and needs nothing from you.';
              var challenge = form.elements.challenge.value;
              var difficulty = Number(form.getAttribute('data-difficulty'));
              var next = 0;
              function step() {
                var sliceEnd = Date.now() + 50;
                do {
                  var solution = fulcrumSolve(challenge, difficulty, next, 1000);
                  next += 1000;
                  if (solution !== null) {
                    form.elements.solution.value = solution;
                    form.submit();
                    return;
                  }
                } while (Date.now() < sliceEnd);
                setTimeout(step, 0);
              }
              setTimeout(step, 0);
            })();

            """

    /// SHA-256 and the solver, as plain ES5 functions so that a test can run them in node:
    /// `fulcrumSha256(bytes)` → 32-byte `Uint8Array`; `fulcrumSolve(challenge, difficulty,
    /// start, count)` → the first decimal solution in `start ..< start + count`, or `null`.
    package static let solverScript = """
        var FULCRUM_K = new Int32Array([
          0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
          0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
          0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
          0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
          0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
          0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
          0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
          0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
        var FULCRUM_H = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
        var FULCRUM_W = new Int32Array(64);
        function fulcrumCompress(h, m, off) {
          var w = FULCRUM_W, i, j, x, y;
          for (i = 0; i < 16; i++) {
            j = off + 4 * i;
            w[i] = m[j] << 24 | m[j + 1] << 16 | m[j + 2] << 8 | m[j + 3];
          }
          for (i = 16; i < 64; i++) {
            x = w[i - 15];
            y = w[i - 2];
            w[i] = w[i - 16] + w[i - 7] + ((x >>> 7 | x << 25) ^ (x >>> 18 | x << 14) ^ (x >>> 3))
              + ((y >>> 17 | y << 15) ^ (y >>> 19 | y << 13) ^ (y >>> 10)) | 0;
          }
          var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
          for (i = 0; i < 64; i++) {
            x = k + ((e >>> 6 | e << 26) ^ (e >>> 11 | e << 21) ^ (e >>> 25 | e << 7)) + (e & f ^ ~e & g) + FULCRUM_K[i] + w[i] | 0;
            y = ((a >>> 2 | a << 30) ^ (a >>> 13 | a << 19) ^ (a >>> 22 | a << 10)) + (a & b ^ a & c ^ b & c) | 0;
            k = g; g = f; f = e; e = d + x | 0; d = c; c = b; b = a; a = x + y | 0;
          }
          h[0] = h[0] + a | 0; h[1] = h[1] + b | 0; h[2] = h[2] + c | 0; h[3] = h[3] + d | 0;
          h[4] = h[4] + e | 0; h[5] = h[5] + f | 0; h[6] = h[6] + g | 0; h[7] = h[7] + k | 0;
        }
        function fulcrumSha256(bytes) {
          var n = bytes.length, m = new Uint8Array((((n + 8) >> 6) + 1) * 64), h = new Int32Array(FULCRUM_H), i;
          m.set(bytes);
          m[n] = 0x80;
          for (i = 1; i <= 4; i++) m[m.length - i] = (n * 8) >>> (8 * (i - 1));
          for (var off = 0; off < m.length; off += 64) fulcrumCompress(h, m, off);
          var out = new Uint8Array(32);
          for (i = 0; i < 32; i++) out[i] = h[i >> 2] >>> (24 - 8 * (i & 3));
          return out;
        }
        function fulcrumSolve(challenge, difficulty, start, count) {
          // The whole 64-byte blocks of "challenge:" are hashed once; each try hashes only the
          // last block or two, built in place: no allocation per try.
          var prefix = new TextEncoder().encode(challenge + ':'), full = prefix.length - prefix.length % 64;
          var mid = new Int32Array(FULCRUM_H), h = new Int32Array(8), block = new Uint8Array(128), rest = prefix.length - full;
          for (var off = 0; off < full; off += 64) fulcrumCompress(mid, prefix, off);
          block.set(prefix.subarray(full));
          for (var counter = start; counter < start + count; counter++) {
            var text = String(counter), n = rest + text.length, blocks = n + 9 > 64 ? 2 : 1, i;
            for (i = 0; i < text.length; i++) block[rest + i] = text.charCodeAt(i);
            block.fill(0, n, 128);
            block[n] = 0x80;
            for (i = 1; i <= 4; i++) block[blocks * 64 - i] = ((full + n) * 8) >>> (8 * (i - 1));
            h.set(mid);
            fulcrumCompress(h, block, 0);
            if (blocks === 2) fulcrumCompress(h, block, 64);
            var zeros = 0;
            for (i = 0; i < 8 && h[i] === 0; i++) zeros += 32;
            if (i < 8) zeros += Math.clz32(h[i]);
            if (zeros >= difficulty) return text;
          }
          return null;
        }

        """

    static let style = """
        body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;\
        color:#1d2330;background:#f4f5f7;display:flex;min-height:100vh;align-items:center;justify-content:center}\
        main{max-width:32rem;padding:2rem;text-align:center}h1{font-size:1.4rem;font-weight:600;margin:0 0 .5rem}\
        p{margin:.5rem 0;color:#4a5160}@media(prefers-color-scheme:dark){body{color:#e6e8ec;background:#15181e}p{color:#a8aebb}}
        """

    /// Escapes text for an HTML attribute value or element content.
    static func escapeHTML(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    private static func hashSource(_ text: String) -> String {
        "sha256-" + Base64URL.encodeStandard(Array(SHA256.hash(data: Array(text.utf8))))
    }
}
