// npu-run's --model mode (npu_run_model.cpp), entered from npu_run.cpp.
#pragma once

int npu_run_model_main(int argc, char **argv);
