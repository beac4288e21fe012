"""The instruction cost model of the client kernels, fitted to exact counts on emulated cores."""
