"""The Finale client in isolation (HTTP mocked with `responses`): status mapping, HTML, encodings, truncation."""

import json

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


def rows_of(client, body, content_type="text/csv"):
    responses.add(responses.GET, URL, body=body, content_type=content_type)
    with client.report_rows(URL) as rows:
        return list(rows)


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
    with pytest.raises(error) as info, client.report_rows(URL):
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
    assert rows_of(client, b"SKU,Name,Qty\r\nA,Bolt,1")[-1] == ["A", "Bolt", "1"]


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
    with pytest.raises(errors.NetworkError) as info, client.report_rows(URL):
        pass
    assert info.value.recoverable


@responses.activate
def test_timeout_is_recoverable(client):
    responses.add(responses.GET, URL, body=requests.exceptions.ReadTimeout("Read timed out."))
    with pytest.raises(errors.FinaleTimeout), client.report_rows(URL):
        pass


@responses.activate
def test_certificate_failure_is_not_recoverable(client):
    responses.add(
        responses.GET,
        URL,
        body=requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
    )
    with pytest.raises(errors.TlsError) as info, client.report_rows(URL):
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
    assert client.resolve(URL) == URL
