#!/bin/bash
# What `fashion-index build --feed` says to each bad feed. Writes benchmarks/results/bad-feeds.txt.
#   bash benchmarks/bad_feeds.sh
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
printf 'id\ttitle\timage_link\nA1\tShirt\thttps://s.example/a.jpg\nA1\tCoat\thttps://s.example/b.jpg\n' > duplicate.tsv
printf 'id\ttitle\timage_link\nA1\tShirt\thttps://s.example/a.jpg\nA2\tCoat\t\n' > missing.tsv
printf 'id,title,image_link\nA1,Shirt,https://s.example/a.jpg,extra,cells\n' > malformed.csv
printf '<rss><channel><item><g:id>1</item></rss>' > broken.xml
cat > bomb.xml <<'X'
<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>&lol3;</g:id>
<g:image_link>https://s.example/x.jpg</g:image_link></item></channel></rss>
X
cat > external.xml <<'X'
<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<rss><channel><item><id>&x;</id><image_link>https://s.example/x.jpg</image_link></item></channel></rss>
X
printf 'id\timage_link\n' > empty.tsv
printf '\xff\xfe\x00garbage' > binary.tsv
{
  for feed in duplicate.tsv missing.tsv malformed.csv broken.xml bomb.xml external.xml empty.tsv binary.tsv \
      no-such-feed.tsv file:///etc/passwd ftp://s.example/feed.xml; do
    echo "\$ fashion-index build --feed $feed --out idx"
    "$root/.venv/bin/fashion-index" build --feed "$feed" --out idx --weights random:0 2>&1
    echo "(exit $?)"
  done
  [ -e idx ] && echo "an idx folder was created" || echo "(no idx folder was created by any of them)"
} > "$root/benchmarks/results/bad-feeds.txt"
cat "$root/benchmarks/results/bad-feeds.txt"
