"""The example plugin tested with pyqom's own fixtures."""

import pytest
from pyqom_example_plugin import plugin

import qom


@pytest.fixture
def plugin_manager(plugin_manager):
    # The shipped manager has autoload off; register this plugin explicitly.
    plugin_manager.register(plugin)
    return plugin_manager


def test_object_add_and_get(tree):
    qom.object_add(tree, {"qom-type": "example-greeter", "id": "g1",
                          "greeting": "hi", "repeat": 3})
    assert qom.qom_get(tree, "/objects/g1", "message") == "hi hi hi"


def test_zero_repeat_is_refused_and_leaves_nothing(tree):
    with pytest.raises(qom.QomError) as err:
        qom.object_add(tree, {"qom-type": "example-greeter", "id": "g1",
                              "greeting": "hi", "repeat": 0})
    assert str(err.value) == "property 'repeat' of example-greeter doesn't take value '0'"
    assert tree.objects.child("g1") is None


def test_hmp_style_arguments(tree):
    qom.object_add(tree, {"qom-type": "example-greeter", "id": "g2", "greeting": "yo",
                          "repeat": "0x2"}, qom.KEYVAL)
    assert qom.qom_get(tree, "g2", "message") == "yo yo"
