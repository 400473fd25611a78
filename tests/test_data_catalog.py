"""Catalog: titles, genres, years, and finding a film by what a person types."""

import pytest

from minivae.data import Catalog, DataError, load_ratings
from minivae.data.catalog import parse_year, title_keys

TITLES = {
    1: "Matrix, The (1999)",
    2: "Matrix Reloaded, The (2003)",
    3: "Emma (1996)",
    4: "Emma (2009)",
    5: "City of Lost Children, The (Cit\u00e9 des enfants perdus, La) (1995)",
    6: "Seven (a.k.a. Se7en) (1995)",
    7: "Auberge espagnole, L' (2002)",
    8: "Babylon 5",
    9: "Star Wars: Episode IV - A New Hope (1977)",
    10: "Star Wars: Episode V - The Empire Strikes Back (1980)",
    11: "Death Note: Desu n\u00f4to (2006\u20132007)",
    12: "Emma (1996)",
}


@pytest.fixture
def catalog():
    ids = list(TITLES)
    return Catalog(ids, [TITLES[i] for i in ids], [("Drama",) if i % 2 else () for i in ids])


def test_title_genres_year_by_original_id(catalog):
    assert len(catalog) == 12 and 5 in catalog and 99 not in catalog
    assert catalog.title(1) == "Matrix, The (1999)"
    assert catalog.genres(1) == ("Drama",) and catalog.genres(2) == ()
    assert catalog.year(1) == 1999 and catalog.year(8) is None and catalog.year(11) == 2006
    assert catalog.genre_names == ["Drama"]
    with pytest.raises(DataError, match="item id 99 is not in the catalog"):
        catalog.title(99)


@pytest.mark.parametrize("query", ["the matrix", "The Matrix", "matrix", "MATRIX",
                                   "Matrix, The (1999)", "The Matrix (1999)", "  the   matrix "])
def test_article_year_and_case_do_not_matter(catalog, query):
    assert catalog.find(query) == 1


@pytest.mark.parametrize("query, item", [
    ("city of lost children", 5), ("la cite des enfants perdus", 5),
    ("se7en", 6), ("seven", 6), ("l'auberge espagnole", 7), ("auberge espagnole", 7),
    ("babylon 5", 8), ("star wars episode iv a new hope", 9), ("death note desu noto", 11),
])
def test_alternative_titles_accents_and_punctuation(catalog, query, item):
    assert catalog.find(query) == item


def test_same_title_different_years_is_settled_by_the_year(catalog):
    assert catalog.find("emma", year=2009) == 4
    assert catalog.find("Emma (2009)") == 4
    candidates = r"'Emma \(1996\)' \(id 3\), 'Emma \(2009\)' \(id 4\), 'Emma \(1996\)' \(id 12\)"
    with pytest.raises(DataError, match=rf"matches 3 films: {candidates}.*year"):
        catalog.find("emma")
    with pytest.raises(DataError, match=r"share title and year; use the item id"):
        catalog.find("emma", year=1996)
    with pytest.raises(DataError, match="no title matches 'emma' in 2001"):
        catalog.find("emma", year=2001)
    with pytest.raises(DataError, match="names the year 2009 but year=1996"):
        catalog.find("Emma (2009)", year=1996)


def test_unknown_title_suggests_close_ones(catalog):
    with pytest.raises(DataError, match=r"no title matches 'matrx'; did you mean: "
                                        r"'Matrix, The \(1999\)'"):
        catalog.find("matrx")
    with pytest.raises(DataError, match=r"did you mean: 'Star Wars: Episode IV.*Episode V"):
        catalog.find("star wars")


def test_title_keys_and_years():
    assert title_keys("Matrix, The (1999)") == ["matrix"]
    assert title_keys("Seven (a.k.a. Se7en) (1995)") == ["seven", "se7en"]
    assert parse_year("Death Note: Desu n\u00f4to (2006\u20132007)") == 2006
    assert parse_year("(500) Days of Summer (2009) ") == 2009
    assert parse_year("Babylon 5") is None


def test_repeated_or_mismatched_ids_are_rejected():
    with pytest.raises(DataError, match="item id 3 more than once"):
        Catalog([3, 3], ["a", "b"], [(), ()])
    with pytest.raises(DataError, match="2 ids, 1 titles"):
        Catalog([1, 2], ["a"], [(), ()])


def test_embedded_catalog_lookups():
    catalog = load_ratings().catalog
    assert catalog.find("the matrix") == 2571
    assert catalog.find("Toy Story") == 1
    assert catalog.find("amelie") == 4973
    assert catalog.title(catalog.find("Usual Suspects")) == "Usual Suspects, The (1995)"
