"""``topo.io.from_module``: the wiring of a model object traced with ``torch.fx``.

Every network here is a few units wide and written out by hand, so the expected layers,
unit sets and connections are read off its ``forward``; the refusals check the one-line
message a user sees (the node or layer named).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from topo.errors import ConfigError, GraphStructureError  # noqa: E402
from topo.io import from_module  # noqa: E402


def _model(forward, **modules):
    """A module holding ``modules`` whose forward is ``forward(self, x)``."""
    cls = type("Net", (nn.Module,), {"forward": forward})
    model = cls()
    for name, module in modules.items():
        setattr(model, name, module)
    return model


# --------------------------------------------------------------------------- what is read
def test_refuses_an_object_that_is_not_a_module():
    with pytest.raises(ConfigError, match=r"takes a torch.nn.Module, got dict"):
        from_module({"fc.weight": np.ones((2, 2))})


def test_refuses_data_dependent_control_flow_in_one_line():
    def forward(self, x):
        y = self.fc(x)
        if y.sum() > 0:
            return y
        return -y

    with pytest.raises(GraphStructureError) as err:
        from_module(_model(forward, fc=nn.Linear(2, 2)))
    message = str(err.value)
    assert message.startswith("<Net model>: torch.fx cannot trace the model (")
    assert "data-dependent control flow" in message
    assert "\n" not in message


def test_a_tracing_error_without_a_message_is_named_by_its_type():
    def forward(self, x):
        raise KeyError()

    with pytest.raises(GraphStructureError, match=r"cannot trace the model \(KeyError\)"):
        from_module(_model(forward, fc=nn.Linear(2, 2)))


def test_masks_by_module_and_weight_name_are_the_connections():
    torch.manual_seed(0)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

    model = _model(forward, fc1=nn.Linear(3, 2), fc2=nn.Linear(2, 2))
    m1 = np.array([[1, 0, 1], [0, 0, 1]])
    m2 = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    g = from_module(model, masks={"fc1": m1, "fc2.weight": m2})
    assert g.names == ["fc1", "fc2"]
    assert g.n_in == [3, 2] and g.n_out == [2, 2]
    assert g.n_connections == [3, 3]
    np.testing.assert_array_equal(g.layers[0].toarray() != 0, m1.astype(bool))
    np.testing.assert_array_equal(g.layers[1].toarray() != 0, m2.numpy().astype(bool))
    # the weights on the connections are the model's own
    w1 = model.fc1.weight.detach().numpy()
    np.testing.assert_allclose(g.layers[0].toarray(), w1 * m1, rtol=1e-6)
    assert g.metadata["format"] == "torch.fx"
    assert g.metadata["source"] == "<Net model>"


def test_input_shape_is_kept_channels_first():
    def forward(self, x):
        return self.conv(x)

    g = from_module(_model(forward, conv=nn.Conv2d(2, 3, 3)), input_shape=[2, 5, 5])
    assert g.input_shape == (2, 5, 5)
    assert g.n_in == [2] and g.n_out == [3]
    assert g.positions == [9]


# --------------------------------------------------------------------------- the ops kept
def test_a_plain_cnn_with_every_unit_preserving_op_is_a_chain():
    def forward(self, x):
        x = self.act(self.bn(self.conv(x)))
        x = F.pad(x, (1, 1, 1, 1))                       # spatial padding
        x = F.pad(x, pad=(1, 1))                         # given by keyword
        x = x[:, :, ::2, ::2]                            # spatial slicing
        x = x * 2.0 - 1.0                                # a constant scale and shift
        x = torch.add(x, 1.0)                            # an addition of one value
        x = self.pool(torch.sigmoid(x)).contiguous()
        x = x.view(x.size(0), -1)                        # size() is no data
        return self.fc(self.drop(self.flat(x)))

    model = _model(forward, conv=nn.Conv2d(1, 2, 3), bn=nn.BatchNorm2d(2), act=nn.ReLU(),
                   pool=nn.AdaptiveAvgPool2d(1), drop=nn.Dropout(), flat=nn.Flatten(),
                   fc=nn.Linear(2, 3))
    g = from_module(model)
    assert g.names == ["conv", "fc"]
    assert g.is_chain
    assert g.n_in == [1, 2] and g.n_out == [2, 3]
    skipped = {s["name"]: s["why"] for s in g.metadata["skipped"]}
    assert skipped["bn.weight"].startswith("normalisation of unit set 1 (the output of 'conv')")


def test_a_normalisation_of_the_input_is_named_so():
    def forward(self, x):
        return self.fc(self.norm(x))

    g = from_module(_model(forward, norm=nn.LayerNorm(4), fc=nn.Linear(4, 2)))
    assert g.names == ["fc"]
    why = {s["name"]: s["why"] for s in g.metadata["skipped"]}
    assert why["norm.weight"].startswith("normalisation of unit set 0 (the network input)")


@pytest.mark.parametrize("combine", [
    lambda a, b: a + b,
    lambda a, b: torch.add(a, b),
    lambda a, b: a.add(b),
    lambda a, b: torch.add(a, other=b),
], ids=["plus", "torch.add", "method add", "keyword other"])
def test_every_spelling_of_an_addition_makes_one_residual_stream(combine):
    def forward(self, x):
        x = self.stem(x)
        x = combine(x, self.conv(F.relu(x)))
        return self.fc(torch.flatten(x.mean((2, 3)), 1))

    model = _model(forward, stem=nn.Conv2d(3, 4, 1), conv=nn.Conv2d(4, 4, 3, padding=1),
                   fc=nn.Linear(4, 2))
    g = from_module(model)
    assert g.names == ["stem", "conv", "fc"]
    # stem writes set 1, conv reads and adds into set 1, fc reads the sum and writes set 2
    assert g.reads == [0, 1, 1] and g.writes == [1, 1, 2]


def test_an_in_place_addition_is_an_addition():
    def forward(self, x):
        x = self.a(x)
        y = self.b(x)
        y += x
        return y

    g = from_module(_model(forward, a=nn.Linear(3, 3), b=nn.Linear(3, 3)))
    assert g.reads == [0, 1] and g.writes == [1, 1]


def test_a_parameter_added_to_the_data_is_no_second_input():
    def forward(self, x):
        return self.fc(x + self.shift)

    model = _model(forward, fc=nn.Linear(3, 2))
    model.shift = nn.Parameter(torch.zeros(3))
    g = from_module(model)
    assert g.names == ["fc"] and g.n_in == [3]


def test_channels_last_transposes_are_followed():
    def forward(self, x):
        x = self.conv(x).permute(0, 2, 3, 1)             # channels last
        x = x.permute((0, 3, 1, 2))                      # and back, perm as one tuple
        x = self.conv2(x).permute(0, 2, 3, 1)
        return self.fc(torch.flatten(x, 1))

    model = _model(forward, conv=nn.Conv2d(1, 2, 1), conv2=nn.Conv2d(2, 2, 1),
                   fc=nn.Linear(2 * 2 * 2, 3))
    g = from_module(model, input_shape=(1, 2, 2))
    assert g.names == ["conv", "conv2", "fc"]
    assert g.is_chain
    # fc reads 2 channels, each at 2 x 2 positions
    assert g.n_in == [1, 2, 2] and g.positions == [1, 1, 4]


def test_option_a_shortcut_is_no_layer():
    # CIFAR's option A: the shortcut subsamples and pads the channels with zeros
    def forward(self, x):
        x = self.stem(x)
        short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 1, 1))
        return self.conv(x) + short

    model = _model(forward, stem=nn.Conv2d(1, 2, 1),
                   conv=nn.Conv2d(2, 4, 3, stride=2, padding=1))
    g = from_module(model)
    assert g.names == ["stem", "conv"]
    assert g.reads == [0, 1] and g.writes == [1, 2]
    (note,) = g.metadata["reading"]["notes"]
    assert note.startswith("zero-padding of the channels 'pad': a parameter-free op")


# --------------------------------------------------------------------------- the ops refused
def _refusal(forward, **modules) -> str:
    with pytest.raises(GraphStructureError) as err:
        from_module(_model(forward, **modules))
    message = str(err.value)
    assert message.startswith("<Net model>: ")
    assert "\n" not in message
    return message


def test_a_layer_called_twice_is_refused():
    message = _refusal(lambda self, x: self.fc(self.fc(x)), fc=nn.Linear(2, 2))
    assert "Linear called a second time (a shared layer) 'fc' in the data flow" in message


def test_an_unknown_module_is_refused_by_class():
    message = _refusal(lambda self, x: self.fc(self.soft(x)), soft=nn.Softmin(1),
                       fc=nn.Linear(2, 2))
    assert "module Softmin 'soft'" in message


def test_a_concatenation_is_refused_by_function_name():
    def forward(self, x):
        return self.fc(torch.cat([self.a(x), self.b(x)], 1))

    message = _refusal(forward, a=nn.Linear(2, 2), b=nn.Linear(2, 2), fc=nn.Linear(4, 2))
    assert "function cat 'cat'" in message


def test_a_product_of_two_values_is_refused():
    message = _refusal(lambda self, x: self.a(x) * self.b(x), a=nn.Linear(2, 2),
                       b=nn.Linear(2, 2))
    assert "mul of two values" in message


@pytest.mark.parametrize("index, shown", [((slice(None), 0), "(slice(None, None, None), 0)"),
                                          (0, "0")])
def test_an_index_that_is_not_a_spatial_slice_is_refused(index, shown):
    message = _refusal(lambda self, x: self.fc(self.conv(x)[index]), conv=nn.Conv2d(1, 2, 1),
                       fc=nn.Linear(2, 2))
    assert f"index {shown}" in message


@pytest.mark.parametrize("pads", [(0, 0, 0, 0, 0, 0, 1, 1), (1.5, 1.5)])
def test_a_padding_of_other_axes_is_refused(pads):
    message = _refusal(lambda self, x: self.fc(F.pad(self.conv(x), pads)),
                       conv=nn.Conv2d(1, 2, 1), fc=nn.Linear(2, 2))
    assert f"pad {pads!r}" in message


@pytest.mark.parametrize("reduce, shown", [
    (lambda t: t.mean(dim=1), "mean over (1,)"),
    (lambda t: t.sum(), "sum over None"),
    (lambda t: t.amax((1, 2)), "amax over (1, 2)"),
])
def test_a_reduction_over_the_channels_is_refused(reduce, shown):
    message = _refusal(lambda self, x: self.fc(reduce(self.conv(x))), conv=nn.Conv2d(1, 2, 1),
                       fc=nn.Linear(2, 2))
    assert shown in message


def test_a_reduction_over_one_spatial_axis_keeps_the_channels():
    g = from_module(_model(lambda self, x: self.fc(self.conv(x).max(2)), conv=nn.Conv1d(1, 2, 1),
                           fc=nn.Linear(2, 3)))
    assert g.names == ["conv", "fc"] and g.n_in == [1, 2]


def test_a_transpose_other_than_channels_first_or_last_is_refused():
    message = _refusal(lambda self, x: self.fc(self.conv(x).permute(0, 1, 3, 2)),
                       conv=nn.Conv2d(1, 2, 1), fc=nn.Linear(2, 2))
    assert "with perm (0, 1, 3, 2)" in message


def test_two_inputs_are_refused():
    message = _refusal(lambda self, x, y: self.fc(x) + self.fc2(y), fc=nn.Linear(2, 2),
                       fc2=nn.Linear(2, 2))
    assert "the graph has 2 data inputs (x, y); topo reads one" in message


def test_two_outputs_are_refused():
    message = _refusal(lambda self, x: (self.fc(x), self.fc2(x)), fc=nn.Linear(2, 2),
                       fc2=nn.Linear(2, 2))
    assert "the graph has 2 outputs (fc, fc2)" in message


def test_a_module_given_two_values_is_refused():
    message = _refusal(lambda self, x: self.fc(self.same(x, self.a(x))), same=nn.Identity(),
                       a=nn.Linear(2, 2), fc=nn.Linear(2, 2))
    assert "takes 2 data inputs" in message


def test_an_output_that_does_not_depend_on_the_input_is_refused():
    def forward(self, x):
        self.fc(x)
        return self.fc2.weight * 2

    message = _refusal(forward, fc=nn.Linear(2, 2), fc2=nn.Linear(2, 2))
    assert "does not depend on its input" in message


def test_adding_a_layer_output_to_itself_is_refused():
    def forward(self, x):
        y = self.fc(x)
        return self.fc2(y + y)

    message = _refusal(forward, fc=nn.Linear(2, 2), fc2=nn.Linear(2, 2))
    assert "adds a layer's output to a sum that already holds it" in message


def test_adding_a_flattened_value_to_a_feature_map_is_refused():
    def forward(self, x):
        return self.a(x) + torch.flatten(self.b(x), 1)

    message = _refusal(forward, a=nn.Conv2d(1, 2, 1), b=nn.Conv2d(1, 2, 1))
    assert "adds a flattened value to a feature map" in message


def test_a_layer_reading_only_a_zero_padding_is_refused():
    def forward(self, x):
        return self.b(F.pad(self.a(x), (0, 0, 0, 0, 1, 1)))

    message = _refusal(forward, a=nn.Conv2d(1, 2, 1), b=nn.Conv2d(4, 2, 1))
    assert "layer 'b' reads unit set 2 before any layer writes it" in message


def test_a_layer_reading_a_zero_padding_that_joined_a_stream_is_refused():
    def forward(self, x):
        y = self.a(x)
        short = F.pad(y, (0, 0, 0, 0, 1, 1))
        total = self.b(y) + short
        return self.c(short) + total

    message = _refusal(forward, a=nn.Conv2d(1, 2, 1), b=nn.Conv2d(2, 4, 1),
                       c=nn.Conv2d(4, 4, 1))
    assert "layer 'c' reads only a parameter-free op's output" in message


def test_a_network_whose_layers_never_see_the_input_is_refused():
    def forward(self, x):
        return self.fc(self.p) + x

    model = _model(forward, fc=nn.Linear(2, 2))
    model.p = nn.Parameter(torch.ones(2))
    with pytest.raises(GraphStructureError, match=r"^<Net model>: no layer in the data flow "
                                                  r"from the input$"):
        from_module(model)


def test_reading_an_earlier_value_of_a_stream_is_refused():
    def forward(self, x):
        y = self.stem(x)
        s = y + self.a(y)
        return self.b(y) + s

    message = _refusal(forward, stem=nn.Linear(2, 2), a=nn.Linear(2, 2), b=nn.Linear(2, 2))
    assert "layer 'b' reads a value of a residual stream other than its sum so far" in message


def test_an_output_other_than_the_last_layer_is_refused():
    def forward(self, x):
        y = self.a(x)
        self.b(y)
        return y

    message = _refusal(forward, a=nn.Linear(2, 2), b=nn.Linear(2, 2))
    assert "the graph's output is not the sum of what its last layer 'b'" in message


def test_a_convolution_of_a_flattened_value_is_refused():
    message = _refusal(lambda self, x: self.conv(torch.flatten(self.fc(x), 1)),
                       fc=nn.Linear(2, 2), conv=nn.Conv1d(2, 2, 1))
    assert "conv 'conv' reads a flattened value" in message


def test_layers_adding_different_widths_into_one_set_are_refused():
    message = _refusal(lambda self, x: self.a(x) + self.b(x), a=nn.Linear(2, 3),
                       b=nn.Linear(2, 4))
    assert "layer 'b' adds 4 outputs into a unit set of 3" in message
