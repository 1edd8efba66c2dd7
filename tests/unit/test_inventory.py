import stat

import pytest

from netgpt.errors import ConfigError
from netgpt.inventory import (
    DeviceEntry,
    Inventory,
    generate_credentials,
    load_credentials,
    save_credentials,
)

pytestmark = pytest.mark.unit


def make(tmp_path):
    creds = tmp_path / "credentials.yaml"
    save_credentials(creds, {"default": generate_credentials()})
    inv = Inventory(
        network="n",
        credentials_file=creds,
        devices=[DeviceEntry(name="r1", netconf_port=830, snmp_port=161)],
    )
    inv.save(tmp_path / "inventory.yaml")
    return inv


def test_round_trip_and_secrets_stay_out_of_inventory(tmp_path):
    inv = make(tmp_path)
    text = (tmp_path / "inventory.yaml").read_text()
    secret = inv.credentials_for(inv.devices[0]).netconf.password.get_secret_value()
    assert secret not in text
    assert secret in (tmp_path / "credentials.yaml").read_text()
    assert stat.S_IMODE((tmp_path / "credentials.yaml").stat().st_mode) == 0o600
    again = Inventory.load(tmp_path / "inventory.yaml")
    assert again.device("r1").netconf_port == 830
    assert again.credentials_for(again.devices[0]).snmp.version == "3"
    # repr/str of credentials never show secrets
    assert secret not in repr(again.credentials_for(again.devices[0]))


def test_unknown_device_and_reference(tmp_path):
    inv = make(tmp_path)
    with pytest.raises(ConfigError, match="'r9' is not in the inventory"):
        inv.device("r9")
    inv.devices[0].credentials = "other"
    with pytest.raises(ConfigError, match="'other'"):
        inv.credentials_for(inv.devices[0])


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("network: [", "not valid YAML"),
        (
            "network: n\ncredentials_file: c\ndevices:\n- name: r1\n  netconf_port: 99999\n"
            "  snmp_port: 161\n",
            "netconf_port",
        ),
    ],
)
def test_bad_inventory_files(tmp_path, content, needle):
    path = tmp_path / "inventory.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        Inventory.load(path)
    with pytest.raises(ConfigError, match="net up"):
        Inventory.load(tmp_path / "missing.yaml")


def test_bad_credentials_never_echo_secret(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "default:\n  netconf: {username: u, password: s3cr3t-value}\n"
        "  snmp: {version: '4', auth_key: s3cr3t-value}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_credentials(path)
    assert "s3cr3t-value" not in str(err.value) and "version" in str(err.value)


def test_secrets_come_from_the_environment_or_a_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "snmp-priv"
    secret.write_text("priv-from-a-file-123\n")
    monkeypatch.setenv("NETGPT_TEST_NC_PASSWORD", "pw-from-env-456")
    path = tmp_path / "credentials.yaml"
    path.write_text(
        "default:\n"
        "  netconf: {username: netgpt, password: 'env:NETGPT_TEST_NC_PASSWORD'}\n"
        f"  snmp: {{auth_key: authkey-plain-789, priv_key: 'file:{secret}'}}\n"
    )
    creds = load_credentials(path)["default"]
    assert creds.netconf.password is not None
    assert creds.netconf.password.get_secret_value() == "pw-from-env-456"
    assert creds.snmp.priv_key is not None
    assert creds.snmp.priv_key.get_secret_value() == "priv-from-a-file-123"
    assert "pw-from-env-456" not in repr(creds) and "priv-from-a-file" not in str(creds)


def test_a_missing_secret_source_is_named_without_any_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "credentials.yaml"
    path.write_text(
        "default:\n"
        "  netconf: {username: netgpt, password: 'env:NETGPT_TEST_UNSET_VARIABLE'}\n"
        "  snmp: {auth_key: authkey-plain-789, priv_key: 'file:/nonexistent/secret'}\n"
    )
    with pytest.raises(ConfigError, match=r"NETGPT_TEST_UNSET_VARIABLE.*is not set") as exc:
        load_credentials(path)
    assert "authkey-plain-789" not in str(exc.value)
    path.write_text(
        "default:\n"
        "  netconf: {username: netgpt, password: plain-password-1}\n"
        "  snmp: {auth_key: authkey-plain-789, priv_key: 'file:/nonexistent/secret'}\n"
    )
    with pytest.raises(ConfigError, match="cannot read secret file '/nonexistent/secret'") as exc:
        load_credentials(path)
    assert "plain-password-1" not in str(exc.value)
