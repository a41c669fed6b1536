"""Reading product feeds: Merchant Center TSV, CSV with a column map, RSS and Atom XML, and bad feeds."""

from __future__ import annotations

import pytest

from indexing.errors import FeedError
from indexing.sources.feeds import parse_columns, parse_feed, read_feed

TSV = (
    "id\ttitle\tlink\timage_link\tadditional_image_link\tprice\tsale_price\tavailability\titem_group_id\n"
    "A1\tLinen shirt\thttps://s.example/a1\thttps://s.example/a1.jpg\thttps://s.example/a1b.jpg,https://s.example/a1c.jpg"
    "\t1299.00 INR\t999.00 INR\tin stock\tG1\n"
    "A2\tWool coat\thttps://s.example/a2\thttps://s.example/a2.jpg\t\t89.90 EUR\t\tout of stock\t\n"
)

RSS = b"""<?xml version="1.0"?>
<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0"><channel><title>Shop</title>
<item><g:id>R1</g:id><title>Red dress</title><link>https://s.example/r1</link>
<g:image_link>https://s.example/r1.jpg</g:image_link>
<g:additional_image_link>https://s.example/r1-back.jpg</g:additional_image_link>
<g:additional_image_link>https://s.example/r1-side.jpg</g:additional_image_link>
<g:price>49.99 USD</g:price><g:availability>in_stock</g:availability><g:brand>Acme</g:brand></item>
<item><g:id>R2</g:id><g:title>Blue jeans</g:title><g:image_link>https://s.example/r2.jpg</g:image_link></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
<entry><g:id>T1</g:id><title>Trainers</title><link href="https://s.example/t1"/>
<g:image_link>https://s.example/t1.jpg</g:image_link><g:price>120.00 GBP</g:price></entry></feed>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>&lol3;</g:id>
<g:image_link>https://s.example/x.jpg</g:image_link></item></channel></rss>"""


def test_merchant_center_tsv_gives_every_photo_and_the_shown_attributes():
    products = parse_feed(TSV.encode(), "feed.tsv")
    assert [p.id for p in products] == ["A1", "A2"]
    assert products[0].images == ("https://s.example/a1.jpg", "https://s.example/a1b.jpg", "https://s.example/a1c.jpg")
    assert products[0].meta["price"] == "1299.00 INR" and products[0].meta["sale_price"] == "999.00 INR"
    assert products[0].meta["item_group_id"] == "G1"
    assert products[1].images == ("https://s.example/a2.jpg",) and products[1].meta["availability"] == "out of stock"
    assert "sale_price" not in products[1].meta  # empty cells are absent, not ""


def test_rss_and_atom_feeds_read_like_the_tsv():
    rss = parse_feed(RSS, "feed.xml")
    assert [p.id for p in rss] == ["R1", "R2"]
    assert len(rss[0].images) == 3 and rss[0].meta["title"] == "Red dress" and rss[0].meta["brand"] == "Acme"
    assert rss[1].meta["title"] == "Blue jeans"
    atom = parse_feed(ATOM, "atom.xml")
    assert atom[0].meta["link"] == "https://s.example/t1" and atom[0].meta["price"] == "120.00 GBP"


def test_any_csv_reads_through_a_column_map():
    shop_export = ("ID,Name,Images,Cost\n"
                   "X9,Silk scarf,\"https://s.example/x9.jpg,https://s.example/x9b.jpg\",15.00 USD\n")
    columns = parse_columns("id=ID,title=Name,image_link=Images,price=Cost")
    [product] = parse_feed(shop_export.encode(), "export.csv", columns)
    assert product.id == "X9" and product.meta == {"title": "Silk scarf", "price": "15.00 USD"}
    assert product.images == ("https://s.example/x9.jpg", "https://s.example/x9b.jpg")
    with pytest.raises(FeedError, match="unknown attribute 'colour'"):
        parse_columns("colour=Colour")


def test_a_billion_laughs_feed_is_refused_with_a_clear_error():
    with pytest.raises(FeedError, match="DTD or entities"):
        parse_feed(BILLION_LAUGHS, "bomb.xml")


@pytest.mark.parametrize(("feed", "message"), [
    ("id\timage_link\nA\thttps://s.example/a.jpg\nA\thttps://s.example/b.jpg\n",
     "row 3: duplicate id 'A', first at row 2"),
    ("id\ttitle\timage_link\nA\tShirt\thttps://s.example/a.jpg\nB\tCoat\t\n", "row 3: product 'B' has no image_link"),
    ("id\timage_link\n\thttps://s.example/a.jpg\n", "row 2: no id"),
    ("id\timage_link\n", "lists no products"),
    ("<rss><channel><item><g:id>1</item></rss>", "malformed XML"),
])
def test_a_bad_feed_gets_one_line_naming_the_row(feed, message):
    with pytest.raises(FeedError, match=message) as raised:
        parse_feed(feed.encode(), "feed.tsv")
    assert "\n" not in str(raised.value)


def test_feed_size_is_capped_and_only_http_urls_are_fetched(tmp_path):
    path = tmp_path / "feed.tsv"
    path.write_text(TSV)
    assert len(read_feed(path)) == 2
    with pytest.raises(FeedError, match="over the 100-byte feed limit"):
        read_feed(path, max_bytes=100)
    with pytest.raises(FeedError, match="only http"):
        read_feed("file:///etc/passwd")
    with pytest.raises(FeedError, match="only http"):
        read_feed("ftp://s.example/feed.tsv")
