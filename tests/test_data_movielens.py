"""MovieLens readers, the embedded archive, and downloads from a local server."""

import functools
import hashlib
import http.server
import threading
import time
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from minivae.data import DATASETS, DataError, default_cache_dir, fetch, load_ratings
from minivae.data.movielens import EMBEDDED_ARCHIVE

U_DATA = b"1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250951\n"
U_ITEM = (
    "10|Am\u00e9lie (2001)|01-Jan-2001||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0|0|0|0\n"
    "20|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
).encode("latin-1")
RATINGS_DAT = b"1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n"
MOVIES_DAT = ("10::Cit\u00e9 des enfants perdus, La (1995)::Adventure|Sci-Fi\n"
              "20::Heat (1995)::Action|Crime|Thriller\n").encode("latin-1")
RATINGS_CSV = (b"userId,movieId,rating,timestamp\r\n1,10,4.5,964982703\r\n"
               b"1,20,0.5,964981247\r\n2,10,3.5,964982224\r\n")
MOVIES_CSV = ('movieId,title,genres\r\n10,"American President, The (1995)",Comedy|Drama\r\n'
              '20,Cosmos,(no genres listed)\r\n').encode("utf-8")

FILES = {
    "ml-100k": {"u.data": U_DATA, "u.item": U_ITEM},
    "ml-1m": {"ratings.dat": RATINGS_DAT, "movies.dat": MOVIES_DAT},
    "ml-20m": {"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV},
}


def make_zip(path, name, files, compression=zipfile.ZIP_DEFLATED):
    """Write ``files`` as members ``<name>/<file>`` of a zip archive at ``path``."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for filename, data in files.items():
            archive.writestr(f"{name}/{filename}", data)
    return path


def md5_of(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", list(FILES))
def test_tiny_archive_of_each_format_is_parsed(tmp_path, name):
    archive = make_zip(tmp_path / f"{name}.zip", name, FILES[name])
    ratings = load_ratings(name, path=archive)
    np.testing.assert_array_equal(ratings.user, [1, 1, 2])
    np.testing.assert_array_equal(ratings.item, [10, 20, 10])
    assert ratings.user.dtype == np.int64 and ratings.timestamp.dtype == np.int64
    assert ratings.rating.dtype == np.float32
    assert len(ratings) == 3 and ratings.n_users == 2 and ratings.n_items == 2
    assert len(ratings.catalog) == 2


def test_100k_latin1_titles_and_genre_flags(tmp_path):
    archive = make_zip(tmp_path / "a.zip", "ml-100k", FILES["ml-100k"])
    ratings = load_ratings("ml-100k", path=archive)
    np.testing.assert_array_equal(ratings.rating, [5, 3, 4])
    np.testing.assert_array_equal(ratings.timestamp, [881250949, 881250950, 881250951])
    assert ratings.catalog.title(10) == "Am\u00e9lie (2001)"
    assert ratings.catalog.genres(10) == ("Comedy", "Romance")
    assert ratings.catalog.genres(20) == ("unknown",)
    assert ratings.catalog.year(10) == 2001 and ratings.catalog.year(20) is None


def test_1m_latin1_titles_with_comma_and_genres(tmp_path):
    ratings = load_ratings("ml-1m", path=make_zip(tmp_path / "a.zip", "ml-1m", FILES["ml-1m"]))
    assert ratings.catalog.title(10) == "Cit\u00e9 des enfants perdus, La (1995)"
    assert ratings.catalog.genres(20) == ("Action", "Crime", "Thriller")
    assert ratings.catalog.find("la cite des enfants perdus") == 10


def test_csv_half_stars_quoted_titles_and_no_genres(tmp_path):
    ratings = load_ratings("ml-20m", path=make_zip(tmp_path / "a.zip", "ml-20m", FILES["ml-20m"]))
    np.testing.assert_array_equal(ratings.rating, [4.5, 0.5, 3.5])
    assert ratings.catalog.title(10) == "American President, The (1995)"
    assert ratings.catalog.genres(10) == ("Comedy", "Drama")
    assert ratings.catalog.genres(20) == ()


@pytest.mark.parametrize("nested", [False, True])
def test_extracted_folder_or_its_parent(tmp_path, nested):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    for filename, data in FILES["ml-1m"].items():
        (folder / filename).write_bytes(data)
    ratings = load_ratings("ml-1m", path=tmp_path if nested else folder)
    np.testing.assert_array_equal(ratings.item, [10, 20, 10])


BAD_LINES = {
    "ml-100k": ("u.data", U_DATA + b"3\t10\tfive\t881250952\n", 4, "rating"),
    "ml-1m": ("ratings.dat", RATINGS_DAT + b"3::10::4\n", 4, "4 fields"),
    "ml-20m": ("ratings.csv", RATINGS_CSV + b"3,1.5,4.0,964982224\r\n", 5, "item id"),
}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_malformed_line_names_file_and_line(tmp_path, name):
    filename, data, line, reason = BAD_LINES[name]
    archive = make_zip(tmp_path / "a.zip", name, {**FILES[name], filename: data})
    with pytest.raises(DataError, match=rf"{filename} in .*a\.zip, line {line}: .*{reason}"):
        load_ratings(name, path=archive)


def test_malformed_movie_line_names_file_and_line(tmp_path):
    movies = MOVIES_CSV + b'30,"Unclosed, The (1999),Drama,extra\r\n'
    archive = make_zip(tmp_path / "a.zip", "ml-20m", {**FILES["ml-20m"], "movies.csv": movies})
    with pytest.raises(DataError, match=r"movies\.csv in .*, line 4"):
        load_ratings("ml-20m", path=archive)


def test_nan_rating_is_reported_with_its_line(tmp_path):
    ratings = RATINGS_CSV + b"2,20,nan,964982224\r\n"
    archive = make_zip(tmp_path / "a.zip", "ml-20m", {**FILES["ml-20m"], "ratings.csv": ratings})
    with pytest.raises(DataError, match=r"line 5: rating 'nan' is not finite"):
        load_ratings("ml-20m", path=archive)


def test_wrong_csv_header_is_line_one(tmp_path):
    ratings = RATINGS_CSV.replace(b"userId", b"user")
    archive = make_zip(tmp_path / "a.zip", "ml-20m", {**FILES["ml-20m"], "ratings.csv": ratings})
    with pytest.raises(DataError, match=r"ratings\.csv in .*, line 1: expected the header"):
        load_ratings("ml-20m", path=archive)


def test_missing_member_says_which(tmp_path):
    archive = make_zip(tmp_path / "a.zip", "ml-1m", {"ratings.dat": RATINGS_DAT})
    with pytest.raises(DataError, match=r"no member 'ml-1m/movies\.dat'.*Download .*ml-1m\.zip"):
        load_ratings("ml-1m", path=archive)


def test_truncated_archive_is_a_data_error(tmp_path):
    archive = make_zip(tmp_path / "a.zip", "ml-1m", FILES["ml-1m"])
    archive.write_bytes(archive.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"not a readable zip archive.*truncated or damaged"):
        load_ratings("ml-1m", path=archive)


def test_corrupt_member_bytes_are_a_data_error(tmp_path):
    archive = make_zip(tmp_path / "a.zip", "ml-1m", FILES["ml-1m"], compression=zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    at = data.index(b"978300760")
    data[at] = ord("1")
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match="Bad CRC-32.*truncated or damaged"):
        load_ratings("ml-1m", path=archive)


def test_unknown_name_lists_known_ones():
    with pytest.raises(DataError, match="ml-latest-small, ml-100k, ml-1m, ml-20m"):
        load_ratings("ml-10m")


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_ratings("ml-1m", path=tmp_path / "nowhere.zip")


def test_embedded_archive_is_the_original_release():
    assert md5_of(EMBEDDED_ARCHIVE) == DATASETS["ml-latest-small"].md5
    assert fetch("ml-latest-small") == EMBEDDED_ARCHIVE


def test_embedded_ratings_load_fast_without_network():
    start = time.perf_counter()
    ratings = load_ratings()
    seconds = time.perf_counter() - start
    # Measured at about 0.1 s; the bound only catches a fall back to slow parsing.
    assert seconds < 2.0
    assert (len(ratings), ratings.n_users, ratings.n_items) == (100_836, 610, 9_724)
    assert len(ratings.catalog) == 9_742
    assert set(np.unique(ratings.rating)) == set(np.arange(1, 11) / 2)
    assert ratings.catalog.title(1) == "Toy Story (1995)"
    assert ratings.catalog.genres(1) == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    assert ratings.stats()["interactions"] == 100_836
    assert "ml-latest-small" in ratings.summary()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local HTTP server for a folder; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def serve_release(root, monkeypatch, name="ml-1m", md5=None):
    """Put a tiny release on the server and make the registry expect its MD5."""
    archive = make_zip(root / f"{name}.zip", name, FILES[name])
    monkeypatch.setitem(DATASETS, name, replace(DATASETS[name], md5=md5 or md5_of(archive)))
    return archive


def test_download_verifies_caches_and_shows_progress(server, tmp_path, monkeypatch, capsys):
    root, url = server
    archive = serve_release(root, monkeypatch)
    cache = tmp_path / "cache"
    ratings = load_ratings("ml-1m", cache_dir=cache, base_url=url)
    np.testing.assert_array_equal(ratings.item, [10, 20, 10])
    assert [p.name for p in cache.iterdir()] == ["ml-1m.zip"]
    assert (cache / "ml-1m.zip").read_bytes() == archive.read_bytes()
    assert "100%" in capsys.readouterr().err
    # The cached copy is used: an unreachable server no longer matters.
    archive.unlink()
    assert fetch("ml-1m", cache_dir=cache, base_url=url) == cache / "ml-1m.zip"


def test_checksum_mismatch_leaves_nothing_in_cache(server, tmp_path, monkeypatch):
    root, url = server
    serve_release(root, monkeypatch, md5="0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"expected 0{32}.*discarded.*path="):
        fetch("ml-1m", cache_dir=cache, base_url=url, progress=False)
    assert list(cache.iterdir()) == []


def test_missing_file_on_server_leaves_nothing_in_cache(server, tmp_path):
    _, url = server
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"could not download .*ml-100k\.zip.*path="):
        fetch("ml-100k", cache_dir=cache, base_url=url, progress=False)
    assert list(cache.iterdir()) == []


def test_damaged_cached_archive_says_delete_it(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-1m.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"ml-1m\.zip has MD5 .*Delete it"):
        fetch("ml-1m", cache_dir=cache)


def test_no_download_when_not_allowed(tmp_path):
    with pytest.raises(DataError, match="download=False"):
        load_ratings("ml-20m", cache_dir=tmp_path, download=False)


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("MINIVAE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "minivae"
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "data"))
    assert default_cache_dir() == tmp_path / "data"


def test_environment_cache_dir_is_used_by_fetch(server, tmp_path, monkeypatch):
    root, url = server
    serve_release(root, monkeypatch, name="ml-100k")
    monkeypatch.setenv("MINIVAE_DATA", str(tmp_path / "data"))
    assert fetch("ml-100k", base_url=url, progress=False) == tmp_path / "data" / "ml-100k.zip"


def test_bad_byte_is_reported_with_its_line(tmp_path):
    ratings = RATINGS_CSV + b"2,20,4.0,96498\xff2224\r\n"
    archive = make_zip(tmp_path / "a.zip", "ml-20m", {**FILES["ml-20m"], "ratings.csv": ratings})
    with pytest.raises(DataError, match=r"ratings\.csv in .*, line 5: not valid utf-8"):
        load_ratings("ml-20m", path=archive)


def test_empty_ratings_file_is_reported(tmp_path):
    archive = make_zip(tmp_path / "a.zip", "ml-1m", {**FILES["ml-1m"], "ratings.dat": b""})
    with pytest.raises(DataError, match=r"ratings\.dat in .* holds no ratings"):
        load_ratings("ml-1m", path=archive)
