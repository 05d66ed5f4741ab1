"""The Finale client in isolation (HTTP mocked with `responses`): status mapping, HTML, encodings, truncation."""

import csv
import io
import json
from contextlib import contextmanager

import pytest
import requests
import responses

from finalesync import errors
from finalesync.client import Credentials, FinaleClient, parse_retry_after

BASE = "http://finale.test"
URL = f"{BASE}/acme/doc/report/pivotTableStream/1/Report.csv?format=csv"
SECRET = "s3cr3t-value-xyz"


@pytest.fixture
def client():
    with FinaleClient(Credentials(BASE, "acme", "key-123456", SECRET), read_timeout=2) as c:
        yield c


@contextmanager
def report_rows(client, url):
    """A report's rows read with Python's csv module from the client's body (the client's behaviour is under
    test here, not the engine's parser)."""
    with client.open_report(url) as body:
        yield csv.reader(io.TextIOWrapper(body, encoding="utf-8-sig", newline=""))


def rows_of(client, body, content_type="text/csv", headers=None):
    """The header and data rows of a body, read by the engine's own report reader (finalesync/parsing.py)."""
    from finalesync.parsing import Header, ReportReader

    responses.add(responses.GET, URL, body=body, content_type=content_type, headers=headers)
    with client.open_report(URL) as report:
        reader = ReportReader(report, what="report")
        header = reader.find_header(lambda row: True)
        rows = [header]
        for batch in reader.batches(Header(cells=header, positions={}, extras=[])):
            cells = [batch.column(f"c{i}").to_pylist() for i in range(len(header))]
            rows += [list(row) for row in zip(*cells, strict=True)]
        return rows


@responses.activate
def test_csv_with_bom_crlf_and_quoted_fields_is_read(client):
    body = '\ufeffSKU,Name\r\nA,"Bolt, ""big"""\r\nB,"two\r\nlines"\r\n'.encode()
    assert rows_of(client, body) == [["SKU", "Name"], ["A", 'Bolt, "big"'], ["B", "two\r\nlines"]]


@responses.activate
def test_basic_auth_and_user_agent_are_sent(client):
    rows_of(client, b"SKU,Name,X\r\n")
    sent = responses.calls[0].request.headers
    assert sent["Authorization"].startswith("Basic ")
    assert sent["User-Agent"].startswith("finalesync/")


@pytest.mark.parametrize(
    "status, error, recoverable",
    [
        (401, errors.AuthError, False),
        (402, errors.AuthError, False),
        (403, errors.AuthError, False),
        (404, errors.NotFound, False),
        (400, errors.BadRequest, False),
        (429, errors.RateLimited, True),
        (500, errors.ServerError, True),
        (502, errors.ServerError, True),
        (503, errors.ServerError, True),
        (504, errors.ServerError, True),
    ],
)
@responses.activate
def test_status_codes_become_typed_errors(client, status, error, recoverable):
    responses.add(
        responses.GET, URL, status=status, body=f"error body with {SECRET}", headers={"Retry-After": "90"}
    )
    with pytest.raises(error) as info, report_rows(client, URL):
        pass
    assert info.value.recoverable is recoverable
    assert info.value.status == status
    assert SECRET not in str(info.value)
    if status == 429:
        assert info.value.retry_after == 90


@responses.activate
def test_html_login_page_with_200_is_never_data(client):
    page = b"<!DOCTYPE html><html><head><title>Finale Inventory - Sign in</title></head><body><form></form>"
    with pytest.raises(errors.HtmlResponse, match="web page") as info:
        rows_of(client, page, content_type="text/csv")
    assert "Sign in" in info.value.excerpt


@responses.activate
def test_empty_body_is_empty_data(client):
    with pytest.raises(errors.EmptyData):
        rows_of(client, b"")


@responses.activate
def test_body_cut_inside_a_quoted_field_is_truncated(client):
    with pytest.raises(errors.TruncatedResponse):
        rows_of(client, b'SKU,Name,Qty\r\nA,"Bolt",1\r\nB,"Nu')


@responses.activate
def test_body_cut_inside_a_row_is_truncated(client):
    with pytest.raises(errors.TruncatedResponse):
        rows_of(client, b"SKU,Name,Qty\r\nA,Bolt,1\r\nB,Nu")


@responses.activate
def test_last_row_without_line_end_but_complete_is_accepted(client):
    body = b"SKU,Name,Qty\r\nA,Bolt,1"
    assert rows_of(client, body, headers={"Content-Length": str(len(body))})[-1] == ["A", "Bolt", "1"]


@responses.activate
def test_last_row_without_line_end_of_an_unverifiable_transfer_is_truncated(client):
    # No Content-Length, no chunking: "1" may have been "12" when the connection dropped.
    with pytest.raises(errors.TruncatedResponse):
        rows_of(client, b"SKU,Name,Qty\r\nA,Bolt,1")


@responses.activate
def test_invalid_utf8_is_malformed(client):
    with pytest.raises(errors.MalformedData, match="UTF-8"):
        rows_of(client, b"SKU,Name,Qty\r\n\xff\xfe\x00garbage\r\n")


@responses.activate
def test_size_cap_gives_a_clear_error():
    with FinaleClient(Credentials(BASE, "acme", "key-123456", SECRET), max_bytes=100_000) as capped:
        with pytest.raises(errors.ResponseTooLarge, match="limit"):
            rows_of(capped, b"SKU,Name,Qty\r\n" + b"A,Bolt,1\r\n" * 50_000)


@responses.activate
def test_connection_error_is_recoverable_network_error(client):
    responses.add(responses.GET, URL, body=requests.exceptions.ConnectionError("Connection refused"))
    with pytest.raises(errors.NetworkError) as info, report_rows(client, URL):
        pass
    assert info.value.recoverable


@responses.activate
def test_timeout_is_recoverable(client):
    responses.add(responses.GET, URL, body=requests.exceptions.ReadTimeout("Read timed out."))
    with pytest.raises(errors.FinaleTimeout), report_rows(client, URL):
        pass


@responses.activate
def test_certificate_failure_is_not_recoverable(client):
    responses.add(
        responses.GET,
        URL,
        body=requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
    )
    with pytest.raises(errors.TlsError) as info, report_rows(client, URL):
        pass
    assert not info.value.recoverable


@responses.activate
def test_order_collection_filters_on_order_type_and_decodes(client):
    body = {"orderId": ["PO-1"], "orderTypeId": ["PURCHASE_ORDER"]}
    responses.add(responses.GET, f"{BASE}/acme/api/order/", json=body)
    assert client.order_collection() == body
    assert "filter=" in responses.calls[0].request.url


@responses.activate
def test_order_collection_that_is_not_an_object_is_malformed(client):
    responses.add(
        responses.GET, f"{BASE}/acme/api/order/", body=json.dumps([1, 2]), content_type="application/json"
    )
    with pytest.raises(errors.MalformedData):
        client.order_collection()


def test_missing_credentials_are_a_configuration_error():
    with pytest.raises(errors.ConfigurationError, match="API key"):
        FinaleClient(Credentials(BASE, "acme", "", ""))


def test_credentials_repr_hides_the_secret():
    assert SECRET not in repr(Credentials(BASE, "acme", "key-123456", SECRET))


def test_retry_after_reads_seconds_and_ignores_nonsense():
    assert parse_retry_after("120") == 120
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_report_url_on_another_host_is_refused_before_any_request(client):
    with pytest.raises(errors.ConfigurationError, match="refusing to send the API credentials"):
        client.resolve("https://evil.example.com/acme/doc/report/pivotTableStream/1/Report.csv")
    assert client.resolve("/acme/doc/report/x.csv") == f"{BASE}/acme/doc/report/x.csv"
    assert client.resolve("acme/doc/report/x.csv") == f"{BASE}/acme/doc/report/x.csv"
    assert client.resolve(URL) == URL


# --- open_report ------------------------------------------------------------------------------------------
@responses.activate
def test_open_report_gives_the_decoded_body_and_its_size(client):
    body = b"\xef\xbb\xbfSKU,Name\r\nA,Bolt\r\n"
    responses.add(responses.GET, URL, body=body, content_type="text/csv")
    with client.open_report(URL) as report:
        assert report.readable() and not report.closed
        assert report.read(5) == body[:5]
        assert report.read() == body[5:]
        assert (report.at_eof, report.bytes_read, report.ends_with_newline) == (True, len(body), True)
    assert report.closed


@responses.activate
def test_open_report_without_a_final_line_break_says_so(client):
    responses.add(responses.GET, URL, body=b"SKU,Name\r\nA,Bolt", content_type="text/csv")
    with client.open_report(URL) as report:
        report.read()
        assert not report.ends_with_newline


@pytest.mark.parametrize(
    "body, error",
    [
        (b"<html><head><title>Finale Inventory - Sign in</title></head></html>", errors.HtmlResponse),
        (b"", errors.EmptyData),
        (b"\xef\xbb\xbf\r\n \r\n", errors.EmptyData),
    ],
)
@responses.activate
def test_open_report_refuses_a_login_page_or_an_empty_body_before_yielding(client, body, error):
    responses.add(responses.GET, URL, body=body, content_type="text/csv")
    with pytest.raises(error), client.open_report(URL):
        pytest.fail("the body must not be handed to a parser")


@responses.activate
def test_a_line_over_the_limit_is_refused_as_line_too_long(client, settings):
    settings.FINALE_MAX_LINE_BYTES = 1000
    body = b"SKU,Name\r\n" + b"A," + b"x" * 997 + b"\r\n" + b"B," + b"y" * 1100 + b"\r\nC,z\r\n"
    responses.add(responses.GET, URL, body=body, content_type="text/csv")
    with pytest.raises(errors.LineTooLong) as info, client.open_report(URL) as report:
        report.read()
    assert not info.value.recoverable and info.value.code == "line_too_long"
    assert isinstance(info.value, errors.MalformedData)
    assert "1,000 bytes" in str(info.value) and "FINALE_MAX_LINE_BYTES" in str(info.value)


@responses.activate
def test_lines_up_to_the_limit_pass(client, settings):
    settings.FINALE_MAX_LINE_BYTES = 1000
    body = b"".join(b"%04d," % n + b"x" * 995 + b"\n" for n in range(300))  # 1000-byte lines
    responses.add(responses.GET, URL, body=body, content_type="text/csv")
    with client.open_report(URL) as report:
        assert report.read() == body


@responses.activate
def test_a_line_over_the_limit_is_refused_while_reading(client, settings):
    settings.FINALE_MAX_LINE_BYTES = 100
    responses.add(responses.GET, URL, body=b"SKU,Name\r\n" + b"A," + b"x" * 200 + b"\r\n")
    with pytest.raises(errors.LineTooLong), report_rows(client, URL) as rows:
        list(rows)


def test_open_report_body_feeds_pyarrow(client):
    pa_csv = pytest.importorskip("pyarrow.csv")
    body = "\ufeffSKU,Name,Qty\r\n".encode() + b"".join(
        b"S%d,Bolt %d,%d\r\n" % (n, n, n) for n in range(5000)
    )
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, URL, body=body, content_type="text/csv")
        with client.open_report(URL) as report:
            table = pa_csv.open_csv(report).read_all()
    assert table.column_names == ["SKU", "Name", "Qty"] and table.num_rows == 5000


def test_a_typed_error_raised_while_pyarrow_reads_comes_out_as_itself(client, settings):
    pa_csv = pytest.importorskip("pyarrow.csv")
    settings.FINALE_MAX_LINE_BYTES = 64 * 1024
    body = b"SKU,Name\r\n" + b"A,B\r\n" * 50_000 + b"x" * (200 * 1024)
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, URL, body=body, content_type="text/csv")
        with client.open_report(URL) as report, pytest.raises(errors.LineTooLong):
            pa_csv.open_csv(report).read_all()


# --- order collection ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@responses.activate
def test_an_order_with_nan_or_infinity_is_a_bad_row_not_a_broken_collection(client, constant):
    from finalesync.datatypes import registry

    body = (
        '{"orderId": ["PO-1", "PO-2"], "orderTypeId": ["PURCHASE_ORDER", "PURCHASE_ORDER"], '
        '"statusId": ["ORDER_LOCKED", "ORDER_LOCKED"], '
        '"orderItemList": [[{"quantity": QTY, "unitPrice": 2}], [{"quantity": 1, "unitPrice": 2}]]}'
    ).replace("QTY", constant)
    responses.add(responses.GET, f"{BASE}/acme/api/order/", body=body, content_type="application/json")
    [parsed] = registry.get("purchase_orders").read(client.order_collection())
    good = [r["natural_key"] for r in parsed.table.to_pylist() if not r["bad"]]
    assert good == ["PO-2"] and parsed.bad == 1
    assert parsed.examples[0].key == "PO-1" and "finite" in parsed.examples[0].reason


@responses.activate
def test_order_collection_over_its_own_cap_is_too_large(client, settings):
    settings.FINALE_MAX_ORDERS_BYTES = 10_000
    body = json.dumps({"orderId": [f"PO-{n}" for n in range(5000)]})
    responses.add(responses.GET, f"{BASE}/acme/api/order/", body=body, content_type="application/json")
    with pytest.raises(errors.ResponseTooLarge, match="FINALE_MAX_ORDERS_BYTES") as info:
        client.order_collection()
    assert "FINALE_MAX_ORDERS_BYTES" in info.value.advice


@responses.activate
def test_order_collection_is_a_dict_that_carries_how_it_arrived(client):
    body = json.dumps({"orderId": ["PO-1"]})
    responses.add(responses.GET, f"{BASE}/acme/api/order/", body=body, content_type="application/json")
    collection = client.order_collection()
    assert isinstance(collection, dict) and collection == {"orderId": ["PO-1"]}
    assert collection.bytes_read == len(body) and isinstance(collection.end_verified, bool)


# --- where the credentials go (issue 9.1) -------------------------------------------------------------------
@pytest.mark.django_db
def test_the_base_url_comes_only_from_settings_never_from_the_admin(settings):
    from finalesync.client import load_credentials
    from finalesync.models import FinaleConnection

    settings.FINALE_BASE_URL = "https://app.finaleinventory.com"
    settings.FINALE_API_KEY = settings.FINALE_API_SECRET = settings.FINALE_ACCOUNT = ""
    stored = {"account": "acme", "api_key": "k-123456", "api_secret": "s-123456"}
    if "base_url" in {f.name for f in FinaleConnection._meta.get_fields()}:  # the admin field is going away
        stored["base_url"] = "http://attacker.example:8080"
    FinaleConnection.objects.create(pk=1, **stored)
    creds = load_credentials()
    assert creds.base_url == "https://app.finaleinventory.com"
    assert (creds.account, creds.api_key) == ("acme", "k-123456")


@responses.activate
def test_a_same_origin_redirect_is_followed_with_the_credentials(client):
    moved = f"{BASE}/acme/doc/report/pivotTableStream/2/Report.csv?format=csv"
    responses.add(
        responses.GET,
        URL,
        status=302,
        headers={"Location": "/acme/doc/report/pivotTableStream/2/Report.csv?format=csv"},
    )
    responses.add(responses.GET, moved, body=b"SKU,Name,Qty\r\nA,B,1\r\n", content_type="text/csv")
    with report_rows(client, URL) as rows:
        assert list(rows)[-1] == ["A", "B", "1"]
    assert [c.request.headers["Authorization"].startswith("Basic ") for c in responses.calls] == [True, True]


@pytest.mark.parametrize(
    "location",
    ["https://evil.example.com/steal", "http://finale.test:8080/acme/x.csv", "https://finale.test/x"],
)
@responses.activate
def test_a_redirect_to_another_origin_is_never_followed(client, location):
    responses.add(responses.GET, URL, status=301, headers={"Location": location})
    with pytest.raises(errors.ForeignRedirect) as info, client.open_report(URL):
        pass
    assert len(responses.calls) == 1  # nothing was sent to the other origin
    error = info.value
    assert not error.recoverable and error.code == "foreign_redirect"
    origin = location.split("/")[0] + "//" + location.split("/")[2]
    assert origin in str(error) and "FINALE_BASE_URL" in str(error)
    assert "steal" not in str(error) and "FINALE_BASE_URL" in error.advice


@responses.activate
def test_a_redirect_loop_ends_with_a_clear_error(client):
    responses.add(responses.GET, URL, status=302, headers={"Location": URL})
    with pytest.raises(errors.BadRequest, match="more than 5 times"), client.open_report(URL):
        pass
    assert len(responses.calls) == 6


# --- error texts (issue 12.11) -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, reason",
    [
        ("app.finaleinventory.com/acme/doc/report/x.csv?filters=abc", "no scheme"),
        ("ftp://finale.test/acme/x.csv", "not http:// or https://"),
        ("http://finale.test:99999/acme/x.csv?filters=abc", "port"),
        ("http:///acme/x.csv", "no host"),
        ("http://finale.test/acme/x y.csv", "spaces"),
    ],
)
def test_a_malformed_report_url_gets_one_line_with_the_cause_and_the_fix(client, url, reason):
    with pytest.raises(errors.ConfigurationError) as info:
        client.resolve(url, what="inventory report")
    text = str(info.value)
    assert reason in text and "copy the report's export URL from Finale" in text
    assert "filters=" not in text and "\n" not in text


def test_a_refused_host_keeps_the_port_in_the_message(client):
    with pytest.raises(errors.ConfigurationError) as info:
        client.resolve("http://finale.test:8443/acme/doc/report/x.csv?filters=abc")
    assert "http://finale.test:8443" in str(info.value) and "filters" not in str(info.value)
    assert "FINALE_BASE_URL (http://finale.test)" in str(info.value)


def test_an_unreachable_host_names_host_and_port_never_the_query(client):
    import socket as socket_module

    with socket_module.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with FinaleClient(Credentials(base, "acme", "key-123456", SECRET), connect_timeout=2) as local:
        with (
            pytest.raises(errors.NetworkError) as info,
            local.open_report(f"{base}/acme/r.csv?filters=c2VjcmV0"),
        ):
            pass
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text and "connection refused" in text and "FINALE_BASE_URL" in text
    assert "c2VjcmV0" not in text and "?" not in text and info.value.recoverable


@responses.activate
def test_a_host_that_does_not_resolve_says_so(client):
    import socket as socket_module

    from urllib3.exceptions import MaxRetryError, NameResolutionError

    reason = NameResolutionError("finale.test", None, socket_module.gaierror(-2, "Name or service not known"))
    cause = MaxRetryError(None, "/acme/doc/report/1/Report.csv?format=csv&filters=c2VjcmV0", reason)
    responses.add(responses.GET, URL, body=requests.exceptions.ConnectionError(cause))
    with pytest.raises(errors.NetworkError) as info, client.open_report(URL):
        pass
    text = str(info.value)
    assert "finale.test:80" in text and "does not resolve" in text and "c2VjcmV0" not in text


@responses.activate
def test_403_says_the_api_user_lacks_permission_and_what_to_do(client):
    responses.add(responses.GET, URL, status=403, body="Forbidden")
    with pytest.raises(errors.AuthError) as info, client.open_report(URL, what="inventory report"):
        pass
    assert "this API user may not read that report: check its permissions in Finale" in str(info.value)
    assert isinstance(info.value, errors.PermissionDenied) and "permissions" in info.value.advice
    assert info.value.code == "auth" and not info.value.recoverable


def test_a_malformed_base_url_is_a_configuration_error():
    with pytest.raises(errors.ConfigurationError, match="FINALE_BASE_URL is not a valid URL"):
        FinaleClient(Credentials("app.finaleinventory.com", "acme", "key-123456", SECRET))
