"""The torch networks behind SequencePredictor, defined when first needed.

torch is imported inside :func:`build_network`, so importing this module is
cheap. Both networks read windows of shape (batch, length, N_CHANNELS) and
return one number per window: the predicted scaled change to the next value.
"""

from __future__ import annotations

from typing import Any

from statebits._dependencies import import_optional
from statebits.ml._series import N_CHANNELS

__all__ = ["build_network"]


def build_network(
    model_type: str,
    *,
    sequence_length: int,
    hidden_size: int,
    num_layers: int,
    d_model: int,
    nhead: int,
    dropout: float,
) -> Any:
    """Return an untrained ``torch.nn.Module`` for ``model_type``."""
    torch = import_optional("torch", feature="SequencePredictor")
    nn = torch.nn

    if model_type == "lstm":

        class LSTMForecaster(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(
                    input_size=N_CHANNELS,
                    hidden_size=hidden_size,
                    num_layers=num_layers,
                    batch_first=True,
                    dropout=dropout if num_layers > 1 else 0.0,
                )
                self.head = nn.Linear(hidden_size, 1)

            def forward(self, windows: Any) -> Any:
                output, _ = self.lstm(windows)
                return self.head(output[:, -1, :]).squeeze(-1)

        return LSTMForecaster()

    class TransformerForecaster(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.project = nn.Linear(N_CHANNELS, d_model)
            # Learned position embeddings: one vector per place in the window.
            self.position = nn.Parameter(torch.zeros(1, sequence_length, d_model))
            layer = nn.TransformerEncoderLayer(
                d_model=d_model,
                nhead=nhead,
                dim_feedforward=2 * d_model,
                dropout=dropout,
                batch_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)
            self.head = nn.Linear(d_model, 1)

        def forward(self, windows: Any) -> Any:
            hidden = self.encoder(self.project(windows) + self.position)
            return self.head(hidden[:, -1, :]).squeeze(-1)

    return TransformerForecaster()
