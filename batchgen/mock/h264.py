"""A tiny, real H.264 bitstream in pure Python: Baseline profile, every frame an I_PCM picture.

I_PCM macroblocks carry raw samples instead of transform coefficients, so a valid stream needs
no encoder at all: a few header fields in Exp-Golomb code, then the pixels. Decoders (ffmpeg,
browsers, players) accept it like any other Baseline stream.
"""

from __future__ import annotations

_NAL_SPS = 7
_NAL_PPS = 8
_NAL_IDR = 5
_PROFILE_BASELINE = 66
_CONSTRAINT_FLAGS = 0xC0  # constraint_set0 + set1: "Constrained Baseline", the most portable
_LEVEL = 10  # 1.0 is enough for the small pictures made here
_MB_TYPE_I_PCM = 25
_MB_BYTES = 256 + 2 * 64  # 16x16 luma plus two 8x8 chroma planes (4:2:0, 8 bits)


class BitWriter:
    """Big-endian bit writer with the Exp-Golomb codes H.264 headers use."""

    __slots__ = ("_acc", "_n", "_out")

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._n = 0

    def u(self, nbits: int, value: int) -> None:
        for shift in range(nbits - 1, -1, -1):
            self._acc = (self._acc << 1) | ((value >> shift) & 1)
            self._n += 1
            if self._n == 8:
                self._out.append(self._acc)
                self._acc = 0
                self._n = 0

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() - 1, 0)
        self.u(code.bit_length(), code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while self._n:
            self.u(1, 0)

    @property
    def aligned(self) -> bool:
        return self._n == 0

    def raw(self, data: bytes) -> None:
        if self._n:
            raise ValueError("raw bytes need a byte-aligned writer")
        self._out += data

    def trailing_bits(self) -> None:
        self.u(1, 1)
        self.align_zero()

    def getvalue(self) -> bytes:
        if self._n:
            raise ValueError("the bitstream is not byte-aligned")
        return bytes(self._out)


def escape(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes so no 00 00 0x (x <= 3) appears inside a NAL unit."""
    if b"\x00\x00" not in rbsp:
        return rbsp
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _nal(ref_idc: int, unit_type: int, rbsp: bytes) -> bytes:
    return bytes([(ref_idc << 5) | unit_type]) + escape(rbsp)


def sps(width_mbs: int, height_mbs: int) -> bytes:
    """The sequence parameter set NAL unit for a picture of the given size in macroblocks."""
    w = BitWriter()
    w.u(8, _PROFILE_BASELINE)
    w.u(8, _CONSTRAINT_FLAGS)
    w.u(8, _LEVEL)
    w.ue(0)  # seq_parameter_set_id
    w.ue(0)  # log2_max_frame_num_minus4
    w.ue(2)  # pic_order_cnt_type 2: output order is decode order, nothing in slice headers
    w.ue(1)  # max_num_ref_frames
    w.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    w.ue(width_mbs - 1)
    w.ue(height_mbs - 1)
    w.u(1, 1)  # frame_mbs_only_flag
    w.u(1, 1)  # direct_8x8_inference_flag
    w.u(1, 0)  # frame_cropping_flag
    w.u(1, 0)  # vui_parameters_present_flag
    w.trailing_bits()
    return _nal(3, _NAL_SPS, w.getvalue())


def pps() -> bytes:
    """The picture parameter set NAL unit: CAVLC, one slice group, no deblocking control."""
    w = BitWriter()
    w.ue(0)  # pic_parameter_set_id
    w.ue(0)  # seq_parameter_set_id
    w.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    w.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    w.ue(0)  # num_slice_groups_minus1
    w.ue(0)  # num_ref_idx_l0_default_active_minus1
    w.ue(0)  # num_ref_idx_l1_default_active_minus1
    w.u(1, 0)  # weighted_pred_flag
    w.u(2, 0)  # weighted_bipred_idc
    w.se(0)  # pic_init_qp_minus26
    w.se(0)  # pic_init_qs_minus26
    w.se(0)  # chroma_qp_index_offset
    w.u(1, 0)  # deblocking_filter_control_present_flag
    w.u(1, 0)  # constrained_intra_pred_flag
    w.u(1, 0)  # redundant_pic_cnt_present_flag
    w.trailing_bits()
    return _nal(3, _NAL_PPS, w.getvalue())


def idr_picture(macroblocks: list[bytes], idr_pic_id: int) -> bytes:
    """One IDR slice NAL unit made of I_PCM macroblocks, each ``_MB_BYTES`` of samples.

    Consecutive IDR pictures must differ in ``idr_pic_id``; alternating 0 and 1 is enough.
    Samples should stay within 1..255 so that no emulation prevention is needed in them.
    """
    w = BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(7)  # slice_type: I, and every slice of the picture is I
    w.ue(0)  # pic_parameter_set_id
    w.u(4, 0)  # frame_num (log2_max_frame_num = 4)
    w.ue(idr_pic_id)
    w.u(1, 0)  # no_output_of_prior_pics_flag
    w.u(1, 0)  # long_term_reference_flag
    w.se(0)  # slice_qp_delta
    for samples in macroblocks:
        if len(samples) != _MB_BYTES:
            raise ValueError(f"an I_PCM macroblock holds {_MB_BYTES} samples")
        if w.aligned:  # after the first: the same two bytes, no bit twiddling
            w.raw(_PCM_ALIGNED)
        else:
            w.ue(_MB_TYPE_I_PCM)
            w.align_zero()  # pcm_alignment_zero_bit
        w.raw(samples)
    w.trailing_bits()
    return _nal(3, _NAL_IDR, w.getvalue())


def _pcm_prefix() -> bytes:
    w = BitWriter()
    w.ue(_MB_TYPE_I_PCM)
    w.align_zero()
    return w.getvalue()


# mb_type I_PCM and its alignment bits, as written from a byte boundary.
_PCM_ALIGNED = _pcm_prefix()


def flat_macroblock(y: int, cb: int, cr: int) -> bytes:
    """A macroblock of one colour (video range: 16 to 235 for luma, 16 to 240 for chroma)."""
    return bytes([y]) * 256 + bytes([cb]) * 64 + bytes([cr]) * 64
