WARC/1.0
WARC-Type: metadata
WARC-Target-URI: http://site.test/p1.html
WARC-Date: 2024-05-18T01:58:10Z
WARC-Record-ID: <urn:uuid:meta-1>
Content-Type: application/json
Content-Length: 476

{"Container":{"Filename":"SYN-00000.warc.gz","Compressed":true,"Offset":"7"},"Envelope":{"WARC-Header-Metadata":{"WARC-Type":"response","WARC-Record-ID":"<urn:uuid:resp-1>","WARC-Target-URI":"http://site.test/p1.html"},"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Head":{"Title":"t"},"Links":[{"path":"A@/href","url":"/about","text":"about"},{"path":"IMG@/src","url":"img/a.png","alt":"a red circle"},{"path":"IMG@/src","url":"https://cdn.test/b.jpg"}]}}}}}

WARC/1.0
WARC-Type: metadata
WARC-Target-URI: http://site.test/p2.html
WARC-Date: 2024-05-18T01:58:10Z
WARC-Record-ID: <urn:uuid:meta-2>
Content-Type: application/json
Content-Length: 40

{"Container":{"Filename":"SYN-00000.warc.gz","Compressed":true,"Offset":"7"},"Envelope":{"WARC-Header-Metadata":{"WARC-Type":"response","WARC-Record-ID":"<urn:uuid:resp-2>","WARC-Target-URI":"http://site.test/p2.html"},"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Head":{"Title":"t"},"Links":[{"path":"A@/href","url":"/about","text":"about"},{"path":"IMG@/src","url":"img/a.png","alt":"a red circle"},{"path":"IMG@/src","url":"https://cdn.test/b.jpg"}]}}}}}

WARC/1.0
WARC-Type: metadata
WARC-Target-URI: http://site.test/p3.html
WARC-Date: 2024-05-18T01:58:10Z
WARC-Record-ID: <urn:uuid:meta-3>
Content-Type: application/json
Content-Length: 476

{"Container":{"Filename":"SYN-00000.warc.gz","Compressed":true,"Offset":"7"},"Envelope":{"WARC-Header-Metadata":{"WARC-Type":"response","WARC-Record-ID":"<urn:uuid:resp-3>","WARC-Target-URI":"http://site.test/p3.html"},"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Head":{"Title":"t"},"Links":[{"path":"A@/href","url":"/about","text":"about"},{"path":"IMG@/src","url":"img/a.png","alt":"a red circle"},{"path":"IMG@/src","url":"https://cdn.test/b.jpg"}]}}}}}

